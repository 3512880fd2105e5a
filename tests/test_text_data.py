"""Text corpora: tokenisers, the vocabulary, text files, the fortune corpora and token batches."""
import pytest
import torch

from genlab.data.sources import fortunes
from genlab.data.sources.corpora import corpus_availability, load_corpus
from genlab.data.text.batches import TextBatches, encode_lines
from genlab.data.text.dataset import read_text_file, split_lines
from genlab.data.text.vocab import BOS, EOS, PAD, SPECIALS, UNK, TextInfo, build_vocab, detokenize, guess_unit, tokenize
from genlab.errors import UserError

needs = {name: pytest.mark.skipif(not ok, reason=why) for name, (ok, why) in corpus_availability().items()}


# ---- tokenisers -------------------------------------------------------------------------------------

WORD_CASES = {
    "Hello, world!": ["hello", ",", "world", "!"],
    "Don't panic -- it's only 5 o'clock.": ["don't", "panic", "-", "-", "it's", "only", "5", "o'clock", "."],
    "  (Twain,  1894)  ": ["(", "twain", ",", "1894", ")"],
    "$5 a week?": ["$", "5", "a", "week", "?"],
}


@pytest.mark.parametrize("line, tokens", WORD_CASES.items(), ids=list(WORD_CASES))
def test_word_tokens_and_round_trip(line, tokens):
    assert tokenize(line, "word") == tokens
    assert tokenize(detokenize(tokens, "word"), "word") == tokens


def test_detokenised_words_read_as_written():
    assert detokenize(tokenize("Hello, world! (It's 5 o'clock.)", "word"), "word") == "hello, world! (it's 5 o'clock.)"
    assert tokenize("Mixed Case", "word", lowercase=False) == ["Mixed", "Case"]


def test_character_tokens_round_trip_exactly():
    line = "兰叶春葳蕤，桂华秋皎洁。"
    assert tokenize(line, "char") == list(line)
    assert detokenize(tokenize(line, "char"), "char") == line


@needs["fortunes"]
def test_every_fortunes_sentence_survives_the_word_round_trip():
    ds = load_corpus("fortunes")
    for line in ds.train + ds.test:
        tokens = tokenize(line, "word")
        assert tokenize(detokenize(tokens, "word"), "word") == tokens, line


def test_the_unit_is_guessed_from_the_script():
    assert guess_unit(["床前明月光，疑是地上霜。"]) == "char"
    assert guess_unit(["A bit of talcum is always walcum."]) == "word"


# ---- the vocabulary ---------------------------------------------------------------------------------

def test_vocabulary_from_training_lines_with_unknown_tokens():
    info = build_vocab(["the cat sat", "the dog sat", "a cat ran"], "word", min_count=2)
    assert info.vocab[:4] == SPECIALS
    assert info.vocab[4:] == ("cat", "sat", "the")            # most frequent first, ties in order; once-seen out
    ids = info.encode("The cat flew")
    assert ids == [info.vocab.index("the"), info.vocab.index("cat"), UNK, EOS]
    assert info.unknown("The cat flew") == ["flew"]
    assert info.decode(ids) == "the cat <unk>"
    assert info.decode([BOS, ids[0], EOS, ids[1], PAD]) == "the"  # stops at the end token
    assert TextInfo.from_json(info.to_json()) == info


def test_a_line_of_unknown_tokens_is_all_unk():
    info = build_vocab(["床前明月光", "明月光"], "char", min_count=1)
    assert info.encode("xyz") == [UNK, UNK, UNK, EOS]
    assert info.unknown("xyz") == ["x", "y", "z"]


def test_lines_longer_than_the_limit_are_left_out_and_counted():
    info = build_vocab(["a b c", "a b"], "word", min_count=1, max_len=3)
    kept, left_out = encode_lines(info, ["a b c", "a b c a", "a"])
    assert [len(s) for s in kept] == [4, 2] and left_out == 1    # 3 tokens + end token is within the limit


# ---- text files -------------------------------------------------------------------------------------

def test_a_text_file_skips_empty_and_repeated_lines(tmp_path):
    f = tmp_path / "poem.txt"
    lines = [f"line number {i}" for i in range(30)]
    f.write_bytes(("\ufeff" + "\r\n".join(lines[:10] + ["", "   ", lines[0]] + lines[10:]) + "\n").encode())
    ds = read_text_file(str(f))
    assert sorted(ds.train + ds.test) == sorted(lines)          # BOM and \r gone, blanks and the repeat dropped
    assert len(ds.test) == 3 and not set(ds.test) & set(ds.train)
    assert ds.notes == {"empty lines": 2, "repeated lines": 1}
    assert ds.unit == "word"
    assert read_text_file(str(f)).test == ds.test               # the split is fixed


@pytest.mark.parametrize("content, words", [
    (b"good line\nanother\n\xff\xfe bad\n", ["line 3", "not UTF-8", "0xff"]),
    (b"", ["is empty"]),
    (b"\n  \n", ["is empty"]),
    (b"only one line\nonly one line\n", ["1 distinct", "at least 2"]),
])
def test_a_bad_text_file_is_refused_with_its_line(tmp_path, content, words):
    f = tmp_path / "bad.txt"
    f.write_bytes(content)
    with pytest.raises(UserError) as e:
        read_text_file(str(f))
    for w in words:
        assert w in str(e.value)


# ---- the fortune corpora ----------------------------------------------------------------------------

def test_overstrike_keeps_what_a_terminal_shows():
    assert fortunes.overstrike("It's a *__\b\bUN*lucky week") == "It's a *UN*lucky week"
    assert fortunes.overstrike("m'\biriel") == "miriel"


def test_a_fortune_file_parsed(tmp_path):
    f = tmp_path / "poems"
    f.write_text("\x1b[32m《送别》\x1b[m\n\x1b[33m作者：王维\x1b[m\n下马饮君酒，问君何所之。\n%\n"
                 "            其一\n\n君言不得意，归卧南山陲。\n%    \n", encoding="utf-8")
    notes = {}
    assert fortunes.verses(fortunes.read_fortune_file(f), notes) == ["下马饮君酒，问君何所之。", "", "君言不得意，归卧南山陲。"]
    assert notes == {"title and author lines": 2, "sub-titles": 1}
    f.write_text("A horse!  A horse!  My kingdom\nfor a horse!  No.  Yes, it is.\n\t\t-- Wm. Shakespeare\n%\n")
    entries = fortunes.read_fortune_file(f)
    assert fortunes.sentences(entries, notes) == ["A horse!", "A horse!", "My kingdom for a horse!", "Yes, it is."]
    assert fortunes.lines(entries, {}) == ["A horse!  A horse!  My kingdom", "for a horse!  No.  Yes, it is."]


@needs["tang300"]
def test_tang300_is_the_verses_alone():
    ds = load_corpus("tang300")
    lines = ds.train + ds.test
    assert len(lines) == 1600 and ds.unit == "char"
    assert not any("\x1b" in s or "作者" in s or s.startswith("《") for s in lines)
    assert "兰叶春葳蕤，桂华秋皎洁。" in lines
    assert load_corpus("tang300").content_hash() == ds.content_hash()


@needs["fortunes"]
def test_fortunes_sentences_carry_no_attributions_or_backspaces():
    ds = load_corpus("fortunes")
    lines = ds.train + ds.test
    assert len(lines) > 20_000 and ds.unit == "word"
    assert not any(s.startswith("--") or "\b" in s or "\x1b" in s for s in lines)
    assert "Avoid reality at all costs." in lines


def test_a_missing_package_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(fortunes, "FORTUNE_DIRS", (tmp_path,))
    assert corpus_availability()["tang300"] == (False, "install Debian's fortunes-zh: apt-get install fortunes-zh")
    with pytest.raises(UserError, match="apt-get install fortunes-min fortunes"):
        load_corpus("fortunes")


# ---- batches ----------------------------------------------------------------------------------------

def test_text_batches_pad_shuffle_and_replay():
    info = build_vocab([f"w{i} " * (1 + i % 5) for i in range(50)], "word", min_count=1)
    ds = split_lines("t", [f"w{i} " * (1 + i % 5) for i in range(50)])
    seqs, _ = encode_lines(info, ds.train)
    b = TextBatches(seqs, batch_size=8, shuffle=True, seed=1)
    epoch = list(b.epoch(0))
    assert len(epoch) == len(b) == 6
    for x, _, lengths in epoch:
        assert x.dtype == torch.long and x.shape[1] == int(lengths.max())
        assert torch.equal((x != PAD).sum(1), lengths)
        assert bool((x[torch.arange(len(x)), lengths - 1] == EOS).all())
    seen = sorted(tuple(r[r != PAD].tolist()) for x, *_ in epoch for r in x)
    assert seen == sorted(tuple(s) for s in seqs)              # every line once
    again = list(b.epoch(0))
    assert all(torch.equal(a[0], c[0]) for a, c in zip(epoch, again))          # replayed exactly
    assert not all(torch.equal(a[0], c[0]) for a, c in zip(epoch, b.epoch(1)))  # a new order next epoch
