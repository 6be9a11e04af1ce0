// Model globs compiled once per policy into anchored regular expressions (names are short).

/** `*` matches any run of characters, `?` exactly one; everything else is literal. Case-insensitive. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (const ch of glob) {
    if (ch === '*') {
      if (!source.endsWith('.*')) source += '.*';
    } else if (ch === '?') source += '.';
    else source += ch.replace(/[\\^$.|+()[\]{}/-]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 'is');
}

export function globMatches(glob: string, value: string): boolean {
  return globToRegExp(glob).test(value);
}
