#!/usr/bin/env python3
"""Writes src/Qmoe/Text/HuggingFace/UnicodeNormalization.txt, the data UnicodeNormalizer needs, from Python's
unicodedata (run with the Python whose Unicode version you want; the committed file names it in its header).

Why not string.Normalize: the project runs with InvariantGlobalization, where .NET's Normalize is a no-op.
Only code points assigned by Unicode 9.0 (Perl's Unicode::UCD Present_In) are listed: Hugging Face tokenizers'
normalization tables are Unicode 9.0 (measured with tokenizers 0.23.2 over all code points: marks and compatibility
characters added since are left alone there); normalization stability makes older code points' data version-independent.
One line per code point that has a canonical combining class, a decomposition, or is a primary composite:
  CP;CCC;NFD;NFKD;COMPOSES
CP and the decompositions in hex (full decompositions, space-separated, empty when the code point maps to itself);
COMPOSES: for a primary composite (NFC recomposes it), the two code points of its canonical decomposition mapping.
Hangul syllables (U+AC00..U+D7A3) are left out: they decompose and compose algorithmically.
Then lines "M;FIRST;LAST": ranges of general category M (combining marks) among the code points assigned by
Unicode 9.0 (Perl's Unicode::UCD Present_In), the table Hugging Face's StripAccents uses (marks from Unicode 10 on
are kept there, measured with tokenizers 0.23.2).
"""
import subprocess
import sys
import unicodedata as u

out = sys.argv[1] if len(sys.argv) > 1 else "src/Qmoe/Text/HuggingFace/UnicodeNormalization.txt"
inv = [int(x) for x in subprocess.run(["perl", "-MUnicode::UCD=prop_invlist", "-e", 'print join(" ", prop_invlist("Present_In=9.0"))'],
                                      check=True, capture_output=True, text=True).stdout.split()] + [0x110000]
present9 = set()
for k in range(0, len(inv) - 1, 2): present9.update(range(inv[k], inv[k + 1]))
lines = [f"# Unicode normalization data of the code points assigned by Unicode 9.0, from Python {sys.version.split()[0]} "
         f"unicodedata {u.unidata_version} (scripts/gen_unicode_normalization.py). CP;CCC;NFD;NFKD;COMPOSES"]
for cp in range(0x110000):
    if 0xD800 <= cp < 0xE000 or 0xAC00 <= cp <= 0xD7A3 or cp not in present9:
        continue
    ch = chr(cp)
    ccc = u.combining(ch)
    nfd = u.normalize("NFD", ch)
    nfkd = u.normalize("NFKD", ch)
    raw = u.decomposition(ch)
    canonical_pair = raw and not raw.startswith("<") and len(raw.split()) == 2
    composes = raw if canonical_pair and u.normalize("NFC", ch) == ch else ""
    if ccc == 0 and nfd == ch and nfkd == ch and not composes:
        continue
    hx = lambda s: "" if s == ch else " ".join(f"{ord(c):X}" for c in s)
    lines.append(f"{cp:X};{ccc};{hx(nfd)};{hx(nfkd)};{composes}")
marks = [cp for cp in sorted(present9) if not 0xD800 <= cp < 0xE000 and u.category(chr(cp)).startswith("M")]
i = 0
while i < len(marks):
    j = i
    while j + 1 < len(marks) and marks[j + 1] == marks[j] + 1: j += 1
    lines.append(f"M;{marks[i]:X};{marks[j]:X}")
    i = j + 1
with open(out, "w", encoding="ascii", newline="\n") as f:
    f.write("\n".join(lines) + "\n")
