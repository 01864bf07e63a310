// Which version of its assistant wrote each answer of the open chat (shown in the
// answer's details), from GET /api/conversations/{id}/assistant.
class AnswerVersions {
  byMessage = $state<Record<string, number>>({});

  set(answers: readonly { message_id: string; version: number }[]): void {
    this.byMessage = Object.fromEntries(answers.map((a) => [a.message_id, a.version]));
  }

  clear(): void {
    this.byMessage = {};
  }
}

export const answerVersions = new AnswerVersions();
