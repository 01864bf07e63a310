import { onMathReady } from '../markdown/math';

/** Bumped when KaTeX finishes loading so rendered messages re-render their math. */
export const mathVersion = $state({ v: 0 });
onMathReady(() => {
  mathVersion.v++;
});
