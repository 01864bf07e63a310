// The projects the user sees (owned or shared), for the sidebar and the Projects page.
import type { Project } from '../api/types';
import { projectsApi } from '../sharing';

class Projects {
  items = $state<Project[]>([]);

  async load(): Promise<void> {
    this.items = (await projectsApi.list()).items;
  }
}

export const projects = new Projects();
