/**
 * Group commit for directory fsyncs (DUR-1 `fsync`): concurrent writers into one directory
 * share fsync rounds. A caller joins the next round that starts after it asked, so the rename it
 * made before asking is covered, and at most one round per directory runs at a time.
 */
export class DirSyncer {
  private readonly state = new Map<string, { running: Promise<void>; next: Promise<void> | undefined }>();

  constructor(private readonly fsyncDir: (dir: string) => Promise<void>) {}

  sync(dir: string): Promise<void> {
    const s = this.state.get(dir);
    if (!s) {
      const st = { running: Promise.resolve(), next: undefined as Promise<void> | undefined };
      this.state.set(dir, st);
      st.running = this.round(dir, st);
      return st.running;
    }
    if (!s.next) {
      s.next = s.running
        .catch(() => undefined)
        .then(() => {
          s.next = undefined;
          s.running = this.round(dir, s);
          return s.running;
        });
    }
    return s.next;
  }

  private round(dir: string, s: { running: Promise<void>; next: Promise<void> | undefined }): Promise<void> {
    const p: Promise<void> = this.fsyncDir(dir).finally(() => {
      if (s.running === p && !s.next) this.state.delete(dir);
    });
    return p;
  }
}
