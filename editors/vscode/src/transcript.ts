// The chat panel's model: threads of questions and streamed answers. Pure
// logic (no VS Code): deltas (opencode/chatDelta {threadId, runId, delta})
// are appended to their thread, and a command's final result replaces the
// streamed text with the authoritative one.

export interface Turn {
  role: 'user' | 'assistant';
  text: string;
  runId?: string;
  /** The answer is complete (result received), failed or was cancelled. */
  done: boolean;
  error?: string;
}

export interface Thread {
  /** Stable key for the view; the server's threadId once known. */
  key: string;
  threadId?: string;
  label: string;
  turns: Turn[];
  model?: string;
}

export interface ChatDelta { threadId: string; runId: string; delta: string }
export interface ChatResultLike { threadId: string; text: string; model?: string }

/**
 * Transcript holds the threads shown in the chat panel. A request starts a
 * pending answer with begin(); the server names the thread only in its first
 * delta or in the result, so a delta for an unknown thread goes to the
 * oldest pending answer that has no thread yet (requests that run at the same
 * time may be attributed in start order until their results correct it).
 */
export class Transcript {
  readonly threads: Thread[] = [];
  private seq = 0;

  /** begin adds a question and an empty, pending answer; returns the answer's handle. */
  begin(label: string, question: string, threadId?: string): string {
    let th = threadId ? this.threads.find((t) => t.threadId === threadId) : undefined;
    if (!th) {
      th = { key: `t${++this.seq}`, threadId, label, turns: [] };
      this.threads.push(th);
    }
    th.turns.push({ role: 'user', text: question, done: true });
    th.turns.push({ role: 'assistant', text: '', done: false });
    return th.key;
  }

  /** delta appends streamed text; returns the key of the thread it went to. */
  delta(d: ChatDelta): string {
    let th = this.threads.find((t) => t.threadId === d.threadId);
    if (!th) {
      th = this.threads.find((t) => !t.threadId && this.pending(t));
      if (th) th.threadId = d.threadId;
    }
    if (!th) {
      th = { key: `t${++this.seq}`, threadId: d.threadId, label: 'Answer', turns: [{ role: 'assistant', text: '', done: false }] };
      this.threads.push(th);
    }
    let turn = this.pending(th);
    if (!turn) {
      turn = { role: 'assistant', text: '', done: false };
      th.turns.push(turn);
    }
    if (!turn.runId) turn.runId = d.runId;
    turn.text += d.delta;
    return th.key;
  }

  /** finish completes the pending answer of thread `key` with the command's result. */
  finish(key: string, res: ChatResultLike): void {
    const th = this.get(key);
    if (!th) return;
    th.threadId = res.threadId || th.threadId;
    if (res.model) th.model = res.model;
    const turn = this.pending(th) ?? th.turns[th.turns.length - 1];
    if (turn && turn.role === 'assistant') {
      turn.text = res.text;
      turn.done = true;
    }
  }

  /** fail ends the pending answer of thread `key` with an error (or "cancelled"). */
  fail(key: string, message: string): void {
    const th = this.get(key);
    const turn = th && this.pending(th);
    if (turn) {
      turn.done = true;
      turn.error = message;
    }
  }

  get(key: string): Thread | undefined {
    return this.threads.find((t) => t.key === key);
  }

  /** The answer text of the last assistant turn of a thread. */
  answer(key: string): string {
    const th = this.get(key);
    const turns = th ? th.turns.filter((t) => t.role === 'assistant') : [];
    return turns.length ? turns[turns.length - 1].text : '';
  }

  private pending(th: Thread): Turn | undefined {
    return th.turns.find((t) => t.role === 'assistant' && !t.done);
  }
}
