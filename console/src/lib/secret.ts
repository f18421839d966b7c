// How a stored secret is shown: only whether it is set, and its fingerprint when there is one.
export function secretState(s: { set: boolean; fingerprint?: string | null }): string {
  if (!s.set) return "not set";
  return s.fingerprint ? `set (${s.fingerprint})` : "set";
}
