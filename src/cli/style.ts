// Colour for humans: on only for a terminal, off with NO_COLOR (https://no-color.org) or
// --no-color. JSON output never carries colour.
export interface Palette {
  red: (s: string) => string;
  green: (s: string) => string;
  yellow: (s: string) => string;
  cyan: (s: string) => string;
  dim: (s: string) => string;
  bold: (s: string) => string;
}

const sgr = (open: number, close: number) => (s: string) =>
  s ? `\x1b[${open}m${s}\x1b[${close}m` : s;

const COLOURS: Palette = {
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  cyan: sgr(36, 39),
  dim: sgr(2, 22),
  bold: sgr(1, 22),
};

const id = (s: string) => s;
const PLAIN: Palette = { red: id, green: id, yellow: id, cyan: id, dim: id, bold: id };

export function palette(enabled: boolean): Palette {
  return enabled ? COLOURS : PLAIN;
}

/** Colour for a stream: a TTY, unless NO_COLOR is set (any value) or --no-color was given. */
export function useColor(
  stream: { isTTY?: boolean },
  flags: { color?: boolean },
  noColorEnv: string | undefined,
): boolean {
  if (flags.color === false) return false;
  if (noColorEnv !== undefined && noColorEnv !== "") return false;
  return Boolean(stream.isTTY);
}
