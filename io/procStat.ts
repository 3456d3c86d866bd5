/**
 * /proc/PID/stat, read the one way it can be: the command name (field 2) may
 * hold spaces and parentheses, so fields are counted from its last ')'.
 * Used to tell a process from a later one that got its pid (device locks,
 * daemon records) and a zombie from a live thread.
 */
import * as fs from 'node:fs';

/** Field `n` (1-based as in proc(5), n >= 3) of a /proc/PID[/task/TID]/stat text. */
export function statField(text: string, n: number): string | undefined {
  return text.slice(text.lastIndexOf(')') + 2).split(' ')[n - 3];
}

/** The start time in clock ticks since boot (field 22) of a stat text, or null. */
export function startTicksOf(text: string): number | null {
  const ticks = Number(statField(text, 22));
  return Number.isSafeInteger(ticks) ? ticks : null;
}

/** Field 22 of /proc/PID/stat, read now; null when the process is gone or /proc is not readable. */
export function readStartTicks(pid: number): number | null {
  try {
    return startTicksOf(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}
