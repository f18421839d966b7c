// One fetch's state for a screen: loading, its data, or a classified failure. Every screen
// shows the same three states the same way.
import { classify, unreachable, type Failure } from "./api";

type Answer<T> = { data?: T; error?: unknown; response: Response };

export class Load<T> {
  data = $state<T | null>(null);
  failure = $state<Failure | null>(null);
  loading = $state(false);

  constructor(private readonly fetcher: () => Promise<Answer<T>>) {}

  async run() {
    this.loading = true;
    this.failure = null;
    try {
      const { data, error, response } = await this.fetcher();
      if (data !== undefined && response.ok) this.data = data;
      else this.failure = classify(response.status, error);
    } catch (e) {
      this.failure = unreachable(e);
    } finally {
      this.loading = false;
    }
  }
}

/** Runs a write; resolves to the data or sets `failure`. */
export async function write<T>(
  call: () => Promise<Answer<T>>,
  onFailure: (f: Failure) => void,
): Promise<T | null> {
  try {
    const { data, error, response } = await call();
    if (response.ok) return (data ?? null) as T | null;
    onFailure(classify(response.status, error));
  } catch (e) {
    onFailure(unreachable(e));
  }
  return null;
}
