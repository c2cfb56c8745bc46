// Rust's text rules for config values, so that errors and logs read byte for byte as the Rust
// examples'. The engine in componentize-js has no Unicode tables (`\p{...}` in a regular expression
// is a syntax error there), so the characters involved are listed here.

/** Rust's `str::trim` strips the Unicode White_Space characters; JS `trim` also strips U+FEFF. */
const WHITE_SPACE = '[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const EDGE_SPACE = new RegExp(`^${WHITE_SPACE}+|${WHITE_SPACE}+$`, 'g');

/** What Rust's `f64::from_str` accepts: decimal and exponent forms, `inf`, `infinity` and `nan`, signed. */
const FLOAT = /^[+-]?(?:inf|infinity|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?)$/i;

/**
 * Parses `raw` as Rust's `raw.trim().parse::<f64>()` plus an `is_finite` check do. Returns the number,
 * or throws the reason as a string: `"abc" is not a number (invalid float literal)` or
 * `"inf" is not a finite number`.
 */
export function parseFinite(raw) {
  const text = raw.replace(EDGE_SPACE, '');
  if (!FLOAT.test(text)) {
    const why = text === '' ? 'cannot parse float from empty string' : 'invalid float literal';
    throw `${debugString(raw)} is not a number (${why})`;
  }
  // Number() rounds decimal text as Rust does; "inf" and "nan" give NaN, refused either way.
  const value = Number(text);
  if (!Number.isFinite(value)) throw `${debugString(raw)} is not a finite number`;
  return value;
}

const SHORT_ESCAPES = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\0': '\\0' };

/**
 * Characters Rust's `{:?}` writes as `\u{...}`: controls, separators but the space, invisible format
 * characters, combining marks, variation selectors, private use, and non-characters. Rust also
 * escapes code points unassigned in planes 0-3 and rarer combining marks, written as they are here.
 */
const ESCAPED = new RegExp(
  '^(?:[\\0-\\x1f\\x7f-\\xa0\\xad\\u0300-\\u036f\\u0483-\\u0489\\u0591-\\u05bd\\u061c\\u064b-\\u065f' +
    '\\u1680\\u180b-\\u180f\\u1ab0-\\u1aff\\u1dc0-\\u1dff\\u2000-\\u200f\\u2028-\\u202f\\u205f-\\u206f' +
    '\\u20d0-\\u20f0\\u3000\\u302a-\\u302f\\u3099\\u309a\\ud800-\\uf8ff\\ufe00-\\ufe0f\\ufe20-\\ufe2f' +
    '\\ufeff\\ufff0-\\ufffb\\ufffe\\uffff]' +
    // Planes 4 to 13 (unassigned), tags and variation selectors, planes 15 and 16 (private use).
    '|[\\ud8c0-\\udb3f][\\udc00-\\udfff]|\\udb40[\\udc00-\\uddef]|[\\udb80-\\udbff][\\udc00-\\udfff])$',
);

/** Quotes `text` as Rust's `format!("{text:?}")` does. */
export function debugString(text) {
  let out = '"';
  for (const ch of text) {
    if (ch in SHORT_ESCAPES) out += SHORT_ESCAPES[ch];
    else if (ESCAPED.test(ch)) out += `\\u{${ch.codePointAt(0).toString(16)}}`;
    else out += ch;
  }
  return `${out}"`;
}
