"""llama-cpp-python called directly: the baseline of the ``local`` benchmark.

Run as a script: ``python bench/_llama_direct.py MODEL_PATH N_CTX N_THREADS``.
It loads the GGUF once, prints ``ready``, then for each JSON line on stdin
(``{"messages", "max_tokens", "temperature", "repeat_penalty"}``) streams
``create_chat_completion`` and prints one JSON line: time to first token,
first/last token times, total time, token chunks and the text.
"""

from __future__ import annotations

import json
import sys
import time

from llama_cpp import Llama


def main() -> None:
    path, n_ctx, n_threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    llama = Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads, verbose=False)
    print("ready", flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        start = time.perf_counter()
        first = last = None
        chunks = 0
        text: list[str] = []
        stream = llama.create_chat_completion(
            messages=job["messages"],
            max_tokens=job["max_tokens"],
            temperature=job["temperature"],
            repeat_penalty=job["repeat_penalty"],
            stream=True,
        )
        for chunk in stream:
            content = (chunk["choices"][0].get("delta") or {}).get("content")
            if content:
                last = time.perf_counter()
                first = first or last
                chunks += 1
                text.append(content)
        total = time.perf_counter() - start
        out = {
            "ttft": (first - start) if first else None,
            "decode": (last - first) if first and last else None,
            "total": total,
            "chunks": chunks,
            "text": "".join(text),
        }
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
