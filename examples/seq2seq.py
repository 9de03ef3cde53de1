"""Sequence to sequence: an encoder LSTM reads a date in words, a decoder LSTM writes it in ISO form.

    "the twenty third of march nineteen ninety eight"  ->  "1998-03-23"

Translation has a sequence on each side, of different lengths and in a different order (the
year comes last in the words but first in the output), so one network reading and writing in
step cannot do it. The encoder reads the whole sentence, word by word, into its final hidden
and cell state; the decoder starts from that state and writes the answer one character at a
time, each step fed the character before.

Training uses **teacher forcing**: the decoder is fed the *correct* previous character, so all
steps are trained at once. At test time there is no correct answer to feed, so decoding is
**greedy**: each step's most likely character becomes the next step's input. Accuracy is exact
match (all ten characters right) on dates the model never saw in training.

Run:  python examples/seq2seq.py [--fast] [--out DIR]
Writes seq2seq_training.png.
"""
import datetime
import time

import numpy as np

import gpunet as gn
from gpunet import nn, optim
from gpunet import functional as F
from _common import parse_args, plt, save

ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
ORDINALS = ("_ first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
            "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth").split()
MONTHS = ("january february march april may june july august september october november "
          "december").split()
FORMATS = ("the {d} of {m} {y}", "{m} the {d} {y}", "{m} {d} {y}")
PAD, BOS, EOS = "<pad>", "^", "$"
TARGET_VOCAB = [BOS, EOS] + list("0123456789-")


def number_words(n):
    """1..99 in words: 'seven', 'forty two'."""
    return ONES[n] if n < 20 else TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])


def ordinal_words(day):
    """1..31 as an ordinal: 'third', 'twentieth', 'thirty first'."""
    if day < 20:
        return ORDINALS[day]
    if day % 10 == 0:
        return TENS[day // 10][:-1] + "ieth"
    return TENS[day // 10] + " " + ORDINALS[day % 10]


def year_words(y):
    """1900..2099 as people say them: 'nineteen oh five', 'two thousand and nine', 'twenty twelve'."""
    low = y % 100
    if y < 2000:
        if low == 0:
            return "nineteen hundred"
        return "nineteen " + ("oh " + ONES[low] if low < 10 else number_words(low))
    if low < 10:
        return "two thousand" + ("" if low == 0 else " and " + ONES[low])
    return "twenty " + number_words(low)


def date_words(date, fmt):
    return fmt.format(d=ordinal_words(date.day), m=MONTHS[date.month - 1], y=year_words(date.year))


def make_data(n_train, n_test, seed=0):
    """Sentences for disjoint sets of dates (1900-2099), each in a random one of FORMATS."""
    rng = np.random.default_rng(seed)
    first = datetime.date(1900, 1, 1)
    n_days = (datetime.date(2099, 12, 31) - first).days + 1
    days = rng.choice(n_days, size=n_train + n_test, replace=False)   # no date in both sets
    pairs = [(date_words(d, FORMATS[rng.integers(len(FORMATS))]), d.isoformat())
             for d in (first + datetime.timedelta(days=int(k)) for k in days)]
    return pairs[:n_train], pairs[n_train:]


def encode(pairs, src_index):
    """Source word ids, left-padded so every sentence *ends* at the last step the encoder reads;
    decoder inputs (BOS + answer) and targets (answer + EOS) as character ids."""
    sentences = [s.split() for s, _ in pairs]
    width = max(map(len, sentences))
    src = np.zeros((len(pairs), width), np.int64)
    for row, words in zip(src, sentences):
        row[width - len(words):] = [src_index[w] for w in words]
    tgt = np.array([[TARGET_VOCAB.index(c) for c in BOS + iso + EOS] for _, iso in pairs])
    return src, tgt[:, :-1], tgt[:, 1:]


class Seq2Seq(nn.Module):
    """Encoder LSTM -> its final (h, c) -> decoder LSTM -> linear read-out of the next character."""

    def __init__(self, src_vocab, tgt_vocab, embed_dim=32, hidden_size=128):
        super().__init__()
        self.src_embed = nn.Embedding(src_vocab, embed_dim, padding_idx=0)
        self.encoder = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.tgt_embed = nn.Embedding(tgt_vocab, embed_dim)
        self.decoder = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, tgt_vocab)

    def encode(self, src):
        _, state = self.encoder(self.src_embed(src))
        return state                                    # the whole sentence, in two vectors

    def decode(self, tgt_in, state):
        out, state = self.decoder(self.tgt_embed(tgt_in), state)
        n, t, h = out.shape
        return self.head(out.reshape(n * t, h)).reshape(n, t, -1), state

    def forward(self, src, tgt_in):                     # teacher forcing: the true previous chars
        return self.decode(tgt_in, self.encode(src))[0]

    def translate(self, src, max_len=12):
        """Greedy decoding: feed back the most likely character until EOS (or max_len)."""
        with gn.no_grad():
            state = self.encode(gn.tensor(src))
            token = np.full((len(src), 1), TARGET_VOCAB.index(BOS))
            out = []
            for _ in range(max_len):
                logits, state = self.decode(gn.tensor(token), state)
                token = logits.numpy()[:, -1].argmax(1)[:, None]
                out.append(token[:, 0])
        words = []
        for row in np.stack(out, 1):
            chars = [TARGET_VOCAB[i] for i in row]
            words.append("".join(chars[:chars.index(EOS)] if EOS in chars else chars))
        return words


def exact_match(model, pairs, src):
    model.eval()
    guesses = model.translate(src)
    model.train()
    return float(np.mean([g == iso for g, (_, iso) in zip(guesses, pairs)])), guesses


def wrong_per_position(guesses, pairs):
    """For each of the ten characters of YYYY-MM-DD, the fraction of answers that get it wrong."""
    return [float(np.mean([g[k:k + 1] != iso[k] for g, (_, iso) in zip(guesses, pairs)]))
            for k in range(10)]


def main(argv=None, seed=0):
    args = parse_args(__doc__, argv)
    steps, eval_every = (300, 50) if args.fast else (600, 50)
    batch = 128
    train_pairs, test_pairs = make_data(n_train=20000, n_test=1000)
    words = sorted({w for s, _ in train_pairs + test_pairs for w in s.split()})
    src_index = {w: i for i, w in enumerate([PAD] + words)}
    src, tgt_in, tgt_out = encode(train_pairs, src_index)
    test_src, _, _ = encode(test_pairs, src_index)
    print(f"{len(train_pairs):,} training sentences, {len(test_pairs):,} held-out ones (other dates); "
          f"{len(words)} source words, {len(TARGET_VOCAB)} target symbols. For example:")
    for sentence, iso in train_pairs[:3]:
        print(f"  {sentence!r:55} -> {iso}")

    gn.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Seq2Seq(len(src_index), len(TARGET_VOCAB))
    params = list(model.parameters())
    optimizer = optim.Adam(params, lr=5e-3)
    losses, curve, position_errors = [], [], []
    start = time.perf_counter()
    for step in range(1, steps + 1):
        idx = rng.integers(0, len(src), size=batch)
        logits = model(gn.tensor(src[idx]), gn.tensor(tgt_in[idx]))
        loss = F.cross_entropy(logits.reshape(-1, len(TARGET_VOCAB)),
                               gn.tensor(tgt_out[idx].reshape(-1)))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, max_norm=1.0)
        optimizer.step()
        losses.append(float(loss))
        if step % eval_every == 0 or step == steps:
            accuracy, guesses = exact_match(model, test_pairs, test_src)
            curve.append((step, accuracy))
            position_errors.append(wrong_per_position(guesses, test_pairs))
            print(f"step {step:5d}  loss {np.mean(losses[-eval_every:]):.3f}  held-out exact match "
                  f"{accuracy:6.1%}  ({time.perf_counter() - start:.0f} s)")

    accuracy = curve[-1][1]
    wrong = [i for i, (g, (_, iso)) in enumerate(zip(guesses, test_pairs)) if g != iso]
    print(f"\nheld-out exact match {accuracy:.1%} ({len(test_pairs) - len(wrong)}/{len(test_pairs)}) "
          f"after {steps} steps [backend {gn.get_backend().name}, {time.perf_counter() - start:.0f} s]. "
          "Greedy translations of dates it never saw:")
    for i in list(range(6)) + wrong[:4]:
        sentence, iso = test_pairs[i]
        mark = "ok" if guesses[i] == iso else f"WRONG, is {iso}"
        print(f"  {sentence!r:55} -> {guesses[i]:10}  {mark}")

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 3.8))
    ax1.plot(np.arange(1, steps + 1), losses, color="C0", alpha=0.3, label="one batch")
    ax1.plot(np.arange(20, steps + 1), np.convolve(losses, np.ones(20) / 20, "valid"), color="C0",
             label="mean of the last 20")
    ax1.set(xlabel="training step", ylabel="cross-entropy per character", yscale="log",
            title="Training loss (teacher forcing)")
    ax1.legend()
    ax2.plot(*zip(*curve), "o-", color="C3")
    ax2.axhline(0.95, color="gray", ls="--", lw=1)
    ax2.text(curve[0][0], 0.96, "95%", color="gray", va="bottom")
    ax2.set(xlabel="training step", ylabel="exact match", ylim=(0, 1.02),
            title=f"Greedy decoding, {len(test_pairs)} unseen dates (final {accuracy:.1%})")
    im = ax3.imshow(np.array(position_errors), cmap="Reds", vmin=0, vmax=1, aspect="auto")
    fig.colorbar(im, ax=ax3, label="fraction wrong")
    ax3.set_xticks(np.arange(10), list("YYYY-MM-DD"))
    ax3.set_yticks(np.arange(len(curve)), [str(step) for step, _ in curve], fontsize=7)
    ax3.set(xlabel="character of the answer", ylabel="training step",
            title="Which characters it gets right first")
    fig.tight_layout()
    save(fig, args.out, "seq2seq_training.png")
    return {"accuracy": accuracy, "curve": curve, "losses": losses, "position_errors": position_errors,
            "examples": [(s, g) for (s, _), g in zip(test_pairs[:6], guesses)]}


if __name__ == "__main__":
    main()
