// Text from apps and repositories (main()'s output, build and fetch lines, error messages)
// shown on a terminal: escape sequences could move the cursor, rewrite earlier lines, set the
// window title or hide text, and bidi controls could make a line read differently. Strip them.

// ESC-introduced sequences (CSI ... final byte, OSC ... BEL/ST, two-byte ESC x), and the C1
// single-character CSI/OSC forms.
/* eslint-disable no-control-regex */
const SEQUENCES =
  /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[@-_]|\u009b[0-?]*[ -/]*[@-~]|\u009d[^\u0007\u009c]*[\u0007\u009c]?/g;
// Remaining C0 (tab kept), DEL, C1, and bidi/zero-width formatting characters.
const CONTROLS =
  /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;
/* eslint-enable no-control-regex */

/** `s` without terminal escape sequences or control characters (tabs kept). */
export function stripControls(s: string): string {
  return s.replace(SEQUENCES, "").replace(CONTROLS, "");
}

/** stripControls() per line: a multi-line message (an error with its hint) keeps its lines. */
export function stripControlsKeepLines(s: string): string {
  return s.split(/\r?\n/).map(stripControls).join("\n");
}
