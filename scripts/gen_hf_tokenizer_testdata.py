#!/usr/bin/env python3
"""Builds the small tokenizer.json files of tests/data/hf-tokenizers/ (components the real fixtures do not use:
Unigram, continuing_subword_prefix / end_of_word_suffix, ignore_merges, unk fusing, added-token flags, normalizers,
Split behaviors, decoders, Bert/Template post-processors) and their inputs. Expected outputs come from the
reference library: node scripts/hf_reference.js DIR (tokenizers 0.23.2 from npm on NODE_PATH).
Usage: python3 scripts/gen_hf_tokenizer_testdata.py FIXTURES/tokenizers/corpus.jsonl tests/data/hf-tokenizers"""
import collections, json, math, os, random, sys

corpus_path, out = sys.argv[1], sys.argv[2]
corpus = [json.loads(l) for l in open(corpus_path, encoding="utf-8")]
rng = random.Random(12)
# Inputs: a sample of the corpus plus strings aimed at the components under test.
inputs = rng.sample(corpus, 160) + [
    "", " ", "  leading and trailing  ", "hello world", "hello, hello!", "xhello hellox hello_ hello",
    "[MASK]   after", "before   [MASK]", "a<sep>   b", "<s>inside</s>", "<unk>", "foo bar foofoo foo.",
    "<|x|>text<|x|><|x|>", "double  space  here", "ÉCOLE Œuvre İstanbul ǅ ﬁne ① ²", "e\u0301 A\u030A \u1100\u1161\u11A8",
    "self-attention well-known x-", "123 4567 89,000 3.14", "tabs\tand\nnewlines\r\n", "emoji 😀👍🏽 𝔘𝔫𝔦",
    "unknown ☃ ♞ chars ✓", "UPPER lower MiXeD", "don't I'm we're", "a.b,c!d?e", "—–-", "    ", "x",
]
os.makedirs(out, exist_ok=True)

def words(text):
    return [w for w in text.split() if w]

def train_bpe(word_counts, merges_wanted, prefix="", suffix="", min_char=1):
    chars = collections.Counter()
    for w, c in word_counts.items():
        for ch in w: chars[ch] += c
    alphabet = sorted(ch for ch, c in chars.items() if c >= min_char)
    vocab = {}
    def add(t):
        if t not in vocab: vocab[t] = len(vocab)
    def symbols(w):
        s = [(prefix if i else "") + ch for i, ch in enumerate(w)]
        if s: s[-1] += suffix
        return s
    for w in word_counts:
        for t in symbols(w):
            if all(ch in alphabet for ch in w): add(t)
    for ch in alphabet:
        add(ch)
    seqs = {w: symbols(w) for w in word_counts if all(ch in alphabet for ch in w)}
    merges = []
    for _ in range(merges_wanted):
        pairs = collections.Counter()
        for w, s in seqs.items():
            for a, b in zip(s, s[1:]): pairs[(a, b)] += word_counts[w]
        if not pairs: break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        new = a + b[len(prefix):]
        merges.append([a, b]); add(new)
        for w, s in seqs.items():
            i, r = 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b: r.append(new); i += 2
                else: r.append(s[i]); i += 1
            seqs[w] = r
    return vocab, merges

def added(id_, content, special=False, normalized=None, lstrip=False, rstrip=False, single_word=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": (not special) if normalized is None else normalized, "special": special}

def write(name, tok):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
    with open(os.path.join(d, "inputs.jsonl"), "w", encoding="utf-8") as f:
        for t in inputs: f.write(json.dumps(t, ensure_ascii=False) + "\n")

base = {"version": "1.0", "truncation": None, "padding": None}

# 1. Unigram with byte fallback, SentencePiece-like normalizer, template with eos after.
counts = collections.Counter()
for t in corpus:
    for w in words(t.lower()):
        w = "\u2581" + w
        for i in range(len(w)):
            for j in range(i + 1, min(len(w), i + 6) + 1): counts[w[i:j]] += 1
pieces = [p for p, c in counts.most_common(1500)]
total = sum(counts[p] for p in pieces)
vocab = [["<unk>", 0.0], ["<s>", 0.0], ["</s>", 0.0]] + [[f"<0x{b:02X}>", 0.0] for b in range(256)]
vocab += [[p, math.log(counts[p] / total)] for p in pieces if p not in ("<unk>", "<s>", "</s>")]
n = len(vocab)
write("unigram", {**base,
    "added_tokens": [added(0, "<unk>", True), added(1, "<s>", True), added(2, "</s>", True),
                     added(n, "[MASK]", True, lstrip=True), added(n + 1, "<sep>", True, rstrip=True),
                     added(n + 2, "hello", False, single_word=True)],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"},
        {"type": "Strip", "strip_left": True, "strip_right": True},
        {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}, {"type": "Prepend", "prepend": "\u2581"}]},
    "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\p{P}"}, "behavior": "Isolated", "invert": False},
    "post_processor": {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "Unigram", "unk_id": 0, "vocab": vocab, "byte_fallback": True}})

# 2. BPE with "##" continuing prefix and "</w>" suffix, Bert-style pieces and post-processor, legacy merge strings.
wc = collections.Counter(w for t in corpus for w in words(t.lower()) if w.isalpha())
vocab, merges = train_bpe(wc, 400, prefix="##", suffix="</w>", min_char=2)
for t in ["[UNK]", "[CLS]", "[SEP]"]: vocab.setdefault(t, len(vocab))
write("subword-bpe", {**base,
    "added_tokens": [added(vocab["[UNK]"], "[UNK]", True), added(vocab["[CLS]"], "[CLS]", True), added(vocab["[SEP]"], "[SEP]", True)],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "StripAccents"}, {"type": "Lowercase"}]},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}, {"type": "Digits", "individual_digits": False},
        {"type": "Split", "pattern": {"Regex": "[.,!?]"}, "behavior": "Removed", "invert": False}]},
    "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", vocab["[SEP]"]], "cls": ["[CLS]", vocab["[CLS]"]]},
    "decoder": {"type": "BPEDecoder", "suffix": "</w>"},
    "model": {"type": "BPE", "dropout": None, "unk_token": "[UNK]", "continuing_subword_prefix": "##", "end_of_word_suffix": "</w>",
              "fuse_unk": False, "byte_fallback": False, "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]}})

# 3. Metaspace BPE with unk fusing, ignore_merges, Split behaviors, non-special and normalized added tokens.
wc = collections.Counter("\u2581" + w for t in corpus for w in words(t))
vocab, merges = train_bpe(wc, 600, min_char=3)
vocab.setdefault("<unk>", len(vocab))
vocab.setdefault("\u2581", len(vocab))
nv = len(vocab)
write("metaspace-bpe", {**base,
    "added_tokens": [added(vocab["<unk>"], "<unk>", True), added(nv, "<|x|>", True), added(nv + 1, "foo", False, single_word=True),
                     added(nv + 2, "  ", False), added(nv + 3, "World", False, normalized=False)],
    "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"String": "-"}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Split", "pattern": {"Regex": "\\p{N}+"}, "behavior": "Contiguous", "invert": True},
        {"type": "Split", "pattern": {"Regex": "[!?]"}, "behavior": "MergedWithNext", "invert": False},
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}]},
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<unk>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<unk>", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<unk>": {"id": "<unk>", "ids": [vocab["<unk>"]], "tokens": ["<unk>"]}}},
    "decoder": {"type": "Sequence", "decoders": [{"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        {"type": "Replace", "pattern": {"Regex": "o+"}, "content": "0"}]},
    "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None, "end_of_word_suffix": None,
              "fuse_unk": True, "byte_fallback": False, "ignore_merges": True, "vocab": vocab, "merges": merges}})
