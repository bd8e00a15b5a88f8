/** MQTT topic filter matching (MQTT 3.1.1 §4.7), for dispatching messages of an external broker. */

/** True when `topic` matches `filter` with `+` (one level) and `#` (the rest) [MQTT-4.7.1-2]. */
export function topicMatches(filter: string, topic: string): boolean {
  // A filter starting with a wildcard never matches a `$` topic [MQTT-4.7.2-1].
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}
