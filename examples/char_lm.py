"""A character-level LSTM language model: read Shakespeare one letter at a time, guess the next.

A recurrent network keeps a hidden state that it updates at every character, so what it predicts
depends on everything it has read so far. The LSTM adds a second state, the cell state (the
"conveyor belt"), which its forget, input and output gates protect, so it can remember longer.

We train on 90% of 200 KB of Shakespeare (``gn.datasets.shakespeare()``) and measure, on the
last 10% it never trains on, the validation loss in **bits per character**: how many yes/no
questions the model still needs, on average, to pin down the next character. Two counting
baselines frame the number: the unigram entropy (letter frequencies only, no memory) and a
bigram model (the previous letter only). While it trains it writes samples, letter by letter.

Run:  python examples/char_lm.py [--fast] [--out DIR]
Writes char_lm_loss.png.
"""
import math
import time

import numpy as np

import gpunet as gn
from gpunet import datasets, nn, optim
from gpunet import functional as F
from _common import parse_args, plt, save

PROMPT = "KING RICHARD III:\n"


class CharLM(nn.Module):
    """Embedding -> LSTM -> linear read-out of the next character's logits, at every step."""

    def __init__(self, vocab_size, embed_dim=32, hidden_size=128):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, codes, state=None):
        out, state = self.lstm(self.embed(codes), state)          # (N, T, H)
        n, t, h = out.shape
        return self.head(out.reshape(n * t, h)).reshape(n, t, -1), state


def counting_baselines(train, val, vocab_size):
    """Bits per character on ``val`` of letter frequencies (unigram) and of P(next | previous)."""
    uni = np.bincount(train, minlength=vocab_size) + 1.0               # add-one smoothing
    uni_bits = -np.mean(np.log2(uni[val] / uni.sum()))
    pairs = np.zeros((vocab_size, vocab_size)) + 0.1
    np.add.at(pairs, (train[:-1], train[1:]), 1.0)
    pairs /= pairs.sum(1, keepdims=True)
    return float(uni_bits), float(-np.mean(np.log2(pairs[val[:-1], val[1:]])))


def bits_per_char(model, codes, seq_len):
    """Mean cross-entropy in bits of predicting codes[i + 1] from codes[:i + 1], in windows."""
    n = (len(codes) - 1) // seq_len
    x = codes[:n * seq_len].reshape(n, seq_len)
    y = codes[1:n * seq_len + 1].reshape(n, seq_len)
    model.eval()
    with gn.no_grad():
        logits, _ = model(gn.tensor(x))
        loss = F.cross_entropy(logits.reshape(n * seq_len, -1), gn.tensor(y.reshape(-1)))
    model.train()
    return float(loss) / math.log(2)


def sample(model, chars, prompt, length, rng, temperature=0.8):
    """Feed the prompt, then draw one character at a time from softmax(logits / temperature)."""
    index = {c: i for i, c in enumerate(chars)}
    model.eval()
    with gn.no_grad():
        logits, state = model(gn.tensor(np.array([[index[c] for c in prompt]])))
        out = []
        for _ in range(length):
            z = logits.numpy()[0, -1] / temperature
            p = np.exp(z - z.max())
            nxt = int(rng.choice(len(chars), p=p / p.sum()))
            out.append(chars[nxt])
            logits, state = model(gn.tensor(np.array([[nxt]])), state)   # one step, state carried
    model.train()
    return prompt + "".join(out)


def main(argv=None, seed=0):
    args = parse_args(__doc__, argv)
    steps, eval_every, sample_len = (40, 20, 120) if args.fast else (480, 80, 240)
    batch, seq_len = 64, 64
    text = datasets.shakespeare()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    codes = np.array([index[c] for c in text], dtype=np.int64)
    split = int(0.9 * len(codes))
    train, val = codes[:split], codes[split:]
    unigram, bigram = counting_baselines(train, val, len(chars))
    print(f"{len(text):,} characters, {len(chars)} distinct; training on {len(train):,}, "
          f"validating on {len(val):,}")
    print(f"baselines on validation: unigram {unigram:.2f} bits/char (no memory), bigram "
          f"{bigram:.2f} (one letter of memory); uniform guessing would need "
          f"{math.log2(len(chars)):.2f}")

    gn.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = CharLM(len(chars))
    params = list(model.parameters())
    optimizer = optim.Adam(params, lr=6e-3)
    train_bits, val_curve, samples = [], [], []
    start = time.perf_counter()
    for step in range(1, steps + 1):
        starts = rng.integers(0, len(train) - seq_len - 1, size=batch)   # random windows
        window = train[starts[:, None] + np.arange(seq_len + 1)]
        logits, _ = model(gn.tensor(window[:, :-1]))
        targets = gn.tensor(window[:, 1:].reshape(-1))                  # each next character
        loss = F.cross_entropy(logits.reshape(batch * seq_len, -1), targets)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, max_norm=1.0)   # tame the occasional exploding gradient
        optimizer.step()
        train_bits.append(float(loss) / math.log(2))
        if step % eval_every == 0 or step == steps:
            val_curve.append((step, bits_per_char(model, val, seq_len)))
            text_out = sample(model, chars, PROMPT, sample_len, rng)
            samples.append(text_out)
            print(f"\nstep {step:4d}  train {np.mean(train_bits[-eval_every:]):.2f}  "
                  f"validation {val_curve[-1][1]:.2f} bits/char  ({time.perf_counter() - start:.0f} s)")
            print("  " + text_out.replace("\n", "\n  "))
    final = val_curve[-1][1]
    print(f"\nvalidation: {final:.2f} bits/char after {steps} steps of {batch}x{seq_len} characters, "
          f"against {unigram:.2f} (unigram) and {bigram:.2f} (bigram) "
          f"[backend {gn.get_backend().name}, {time.perf_counter() - start:.0f} s]")

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    kernel = np.ones(10) / 10
    ax.plot(np.arange(1, steps + 1), train_bits, color="C0", alpha=0.25)
    ax.plot(np.arange(10, steps + 1), np.convolve(train_bits, kernel, "valid"), color="C0",
            label="training batches (10-step mean)")
    ax.plot(*zip(*val_curve), "o-", color="C3", label="validation (never trained on)")
    for level, name, style in ((unigram, "unigram counts", "--"), (bigram, "bigram counts", ":")):
        ax.axhline(level, color="gray", ls=style)
        ax.text(steps / 2, level + 0.05, f"{name} ({level:.2f})", color="gray", ha="center",
                va="bottom")
    ax.set(xlabel="training step", ylabel="bits per character", title="Character-level LSTM on "
           "Shakespeare", ylim=(min(1.0, final - 0.3), math.log2(len(chars)) + 0.3))
    ax.legend(loc="upper right")
    save(fig, args.out, "char_lm_loss.png")
    return {"unigram_bits": unigram, "bigram_bits": bigram, "train_bits": train_bits,
            "val_bits": [b for _, b in val_curve], "samples": samples}


if __name__ == "__main__":
    main()
