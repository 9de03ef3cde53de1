"""The shape of karpathy/makemore makemore.py with --type mlp, in PyTorch's names.

Only the import block picks the framework (SCRIPT_FRAMEWORK=torch, else gpunet). Differences
from the original: 40 names hard-coded here instead of names.txt; only the MLP model; the
script's globals live in main(); evaluation and sampling every ``eval_interval`` and
``sample_interval`` steps (the original: 500 and 200); every training loss is recorded; the first
run saves the initial state_dict and the second loads it. For the comparison, which cannot share
random streams across frameworks, the train/test split and the training batches follow a fixed
order (``fixed_order=True``); the RandomSampler loader is still built and one batch of it drawn.
torch.utils.tensorboard needs the ``tensorboard`` package: where it is missing the import falls
back to a stub SummaryWriter that records nothing.

    python tests/script_shapes/makemore_mlp.py WORKDIR STEPS   # prints JSON
"""
import json
import os
import sys
import time
from dataclasses import dataclass

if os.environ.get("SCRIPT_FRAMEWORK") == "torch":
    import torch
    import torch.nn as nn
    from torch.nn import functional as F
    from torch.utils.data import Dataset
    from torch.utils.data.dataloader import DataLoader
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch's needs the tensorboard package
        SummaryWriter = None
else:
    import gpunet as torch
    import gpunet.nn as nn
    from gpunet.nn import functional as F
    from gpunet.utils.data import Dataset
    from gpunet.utils.data.dataloader import DataLoader
    try:
        from gpunet.utils.tensorboard import SummaryWriter
    except ImportError:  # needs tensorboardX
        SummaryWriter = None

if SummaryWriter is None:
    class SummaryWriter:
        def __init__(self, log_dir=None):
            self.log_dir = log_dir

        def add_scalar(self, tag, value, step):
            pass

        def flush(self):
            pass

NAMES = """emma olivia ava isabella sophia charlotte mia amelia harper evelyn abigail emily
elizabeth mila ella avery sofia camila aria scarlett victoria madison luna grace chloe penelope
layla riley zoey nora lily eleanor hannah lillian addison aubrey ellie stella natalie zoe""".split()

# -----------------------------------------------------------------------------

@dataclass
class ModelConfig:
    block_size: int = None # length of the input sequences of integers
    vocab_size: int = None # the input integers are in range [0 .. vocab_size -1]
    # parameters below control the sizes of each model slightly differently
    n_layer: int = 4
    n_embd: int = 64
    n_embd2: int = 64
    n_head: int = 4


class MLP(nn.Module):
    """
    takes the previous block_size tokens, encodes them with a lookup table,
    concatenates the vectors and predicts the next token with an MLP.
    """

    def __init__(self, config):
        super().__init__()
        self.block_size = config.block_size
        self.vocab_size = config.vocab_size
        self.wte = nn.Embedding(config.vocab_size + 1, config.n_embd) # token embeddings table
        # +1 in the line above for a special <BLANK> token that gets inserted if encoding a token
        # before the beginning of the input sequence
        self.mlp = nn.Sequential(
            nn.Linear(self.block_size * config.n_embd, config.n_embd2),
            nn.Tanh(),
            nn.Linear(config.n_embd2, self.vocab_size)
        )

    def get_block_size(self):
        return self.block_size

    def forward(self, idx, targets=None):

        # gather the word embeddings of the previous 3 words
        embs = []
        for k in range(self.block_size):
            tok_emb = self.wte(idx) # token embeddings of shape (b, t, n_embd)
            idx = torch.roll(idx, 1, 1)
            idx[:, 0] = self.vocab_size # special <BLANK> token
            embs.append(tok_emb)

        # concat all of the embeddings together and pass through an MLP
        x = torch.cat(embs, -1) # (b, t, n_embd * block_size)
        logits = self.mlp(x)

        # if we are given some desired targets also calculate the loss
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)

        return logits, loss

# -----------------------------------------------------------------------------
# helper functions for evaluating and sampling from the model

@torch.no_grad()
def generate(model, idx, max_new_tokens, temperature=1.0, do_sample=False, top_k=None):
    """
    Take a conditioning sequence of indices idx (LongTensor of shape (b,t)) and complete
    the sequence max_new_tokens times, feeding the predictions back into the model each time.
    """
    block_size = model.get_block_size()
    for _ in range(max_new_tokens):
        # if the sequence context is growing too long we must crop it at block_size
        idx_cond = idx if idx.size(1) <= block_size else idx[:, -block_size:]
        # forward the model to get the logits for the index in the sequence
        logits, _ = model(idx_cond)
        # pluck the logits at the final step and scale by desired temperature
        logits = logits[:, -1, :] / temperature
        # optionally crop the logits to only the top k options
        if top_k is not None:
            v, _ = torch.topk(logits, top_k)
            logits[logits < v[:, [-1]]] = -float('Inf')
        # apply softmax to convert logits to (normalized) probabilities
        probs = F.softmax(logits, dim=-1)
        # either sample from the distribution or take the most likely element
        if do_sample:
            idx_next = torch.multinomial(probs, num_samples=1)
        else:
            _, idx_next = torch.topk(probs, k=1, dim=-1)
        # append sampled index to the running sequence and continue
        idx = torch.cat((idx, idx_next), dim=1)

    return idx


@torch.inference_mode()
def evaluate(model, dataset, batch_size=50, max_batches=None, device='cpu'):
    model.eval()
    loader = DataLoader(dataset, shuffle=True, batch_size=batch_size, num_workers=0)
    losses = []
    for i, batch in enumerate(loader):
        batch = [t.to(device) for t in batch]
        X, Y = batch
        logits, loss = model(X, Y)
        losses.append(loss.item())
        if max_batches is not None and i >= max_batches:
            break
    mean_loss = torch.tensor(losses).mean().item()
    model.train() # reset model back to training mode
    return mean_loss

# -----------------------------------------------------------------------------
# helper functions for creating the training and test Datasets that emit words

class CharDataset(Dataset):

    def __init__(self, words, chars, max_word_length):
        self.words = words
        self.chars = chars
        self.max_word_length = max_word_length
        self.stoi = {ch:i+1 for i,ch in enumerate(chars)}
        self.itos = {i:s for s,i in self.stoi.items()} # inverse mapping

    def __len__(self):
        return len(self.words)

    def contains(self, word):
        return word in self.words

    def get_vocab_size(self):
        return len(self.chars) + 1 # all the possible characters and special 0 token

    def get_output_length(self):
        return self.max_word_length + 1 # <START> token followed by words

    def encode(self, word):
        ix = torch.tensor([self.stoi[w] for w in word], dtype=torch.long)
        return ix

    def decode(self, ix):
        word = ''.join(self.itos[i] for i in ix)
        return word

    def __getitem__(self, idx):
        word = self.words[idx]
        ix = self.encode(word)
        x = torch.zeros(self.max_word_length + 1, dtype=torch.long)
        y = torch.zeros(self.max_word_length + 1, dtype=torch.long)
        x[1:1+len(ix)] = ix
        y[:len(ix)] = ix
        y[len(ix)+1:] = -1 # index -1 will mask the loss at the inactive locations
        return x, y


def create_datasets(input_file, fixed_order=False):

    # preprocessing of the input text file
    with open(input_file, 'r') as f:
        data = f.read()
    words = data.splitlines()
    words = [w.strip() for w in words] # get rid of any leading or trailing white space
    words = [w for w in words if w] # get rid of any empty strings
    chars = sorted(list(set(''.join(words)))) # all the possible characters
    max_word_length = max(len(w) for w in words)
    print(f"number of examples in the dataset: {len(words)}", file=sys.stderr)
    print(f"max word length: {max_word_length}", file=sys.stderr)
    print(f"number of unique characters in the vocabulary: {len(chars)}", file=sys.stderr)

    # partition the input data into a training and the test set
    test_set_size = min(1000, int(len(words) * 0.1)) # 10% of the training set, or up to 1000 examples
    rp = torch.randperm(len(words)).tolist()
    assert sorted(rp) == list(range(len(words)))
    if fixed_order:  # the comparison: a split both frameworks share
        rp = [(7 * i) % len(words) for i in range(len(words))]
    train_words = [words[i] for i in rp[:-test_set_size]]
    test_words = [words[i] for i in rp[-test_set_size:]]
    print(f"split up the dataset into {len(train_words)} training examples and {len(test_words)} test examples",
          file=sys.stderr)

    # wrap in dataset objects
    train_dataset = CharDataset(train_words, chars, max_word_length)
    test_dataset = CharDataset(test_words, chars, max_word_length)

    return train_dataset, test_dataset


class InfiniteDataLoader:
    """
    this is really hacky and I'm not proud of it, but there doesn't seem to be
    a better way in PyTorch to just create an infinite dataloader?
    """

    def __init__(self, dataset, sampler=None, **kwargs):
        train_sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=int(1e10))
        if sampler is not None:  # the comparison: batches both frameworks share
            train_sampler = sampler
        self.train_loader = DataLoader(dataset, sampler=train_sampler, **kwargs)
        self.data_iter = iter(self.train_loader)

    def next(self):
        try:
            batch = next(self.data_iter)
        except StopIteration: # this will technically only happen after 1e10 samples... (i.e. basically never)
            self.data_iter = iter(self.train_loader)
            batch = next(self.data_iter)
        return batch

# -----------------------------------------------------------------------------

def main(work_dir, max_steps=20, fixed_order=True, device='cpu', seed=3407, top_k=-1, n_embd=64, n_embd2=64,
         batch_size=32, learning_rate=5e-4, weight_decay=0.01, num_workers=4, eval_interval=10,
         sample_interval=10):
    # system inits
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    os.makedirs(work_dir, exist_ok=True)
    writer = SummaryWriter(log_dir=work_dir)

    input_file = os.path.join(work_dir, 'names.txt')
    with open(input_file, 'w') as f:
        f.write('\n'.join(NAMES) + '\n')

    # init datasets
    train_dataset, test_dataset = create_datasets(input_file, fixed_order)
    vocab_size = train_dataset.get_vocab_size()
    block_size = train_dataset.get_output_length()
    print(f"dataset determined that: {vocab_size=}, {block_size=}", file=sys.stderr)

    # init model
    config = ModelConfig(vocab_size=vocab_size, block_size=block_size,
                         n_embd=n_embd, n_embd2=n_embd2)
    model = MLP(config)
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model #params: {n_params}", file=sys.stderr)
    init_path = os.path.join(work_dir, 'mlp_init.pt')  # the same weights in both frameworks
    if os.path.exists(init_path):
        model.load_state_dict(torch.load(init_path))
    else:
        torch.save(model.state_dict(), init_path)

    def print_samples(num=10):
        """ samples from the model and pretty prints the decoded samples """
        X_init = torch.zeros(num, 1, dtype=torch.long).to(device)
        top_k_ = top_k if top_k != -1 else None
        steps = train_dataset.get_output_length() - 1 # -1 because we already start with <START> token (index 0)
        X_samp = generate(model, X_init, steps, top_k=top_k_, do_sample=True).to('cpu')
        train_samples, test_samples, new_samples = [], [], []
        for i in range(X_samp.size(0)):
            # get the i'th row of sampled integers, as python list
            row = X_samp[i, 1:].tolist() # note: we need to crop out the first <START> token
            # token 0 is the <STOP> token, so we crop the output sequence at that point
            crop_index = row.index(0) if 0 in row else len(row)
            row = row[:crop_index]
            word_samp = train_dataset.decode(row)
            # separately track samples that we have and have not seen before
            if train_dataset.contains(word_samp):
                train_samples.append(word_samp)
            elif test_dataset.contains(word_samp):
                test_samples.append(word_samp)
            else:
                new_samples.append(word_samp)
        print('-'*80, file=sys.stderr)
        for lst, desc in [(train_samples, 'in train'), (test_samples, 'in test'), (new_samples, 'new')]:
            print(f"{len(lst)} samples that are {desc}:", file=sys.stderr)
            for word in lst:
                print(word, file=sys.stderr)
        print('-'*80, file=sys.stderr)
        return {"shape": list(X_samp.shape), "dtype": str(X_samp.dtype).replace("torch.", ""),
                "min": X_samp.min().item(), "max": X_samp.max().item(),
                "first_column_zero": bool((X_samp[:, 0] == 0).all().item()),
                "n_words": len(train_samples) + len(test_samples) + len(new_samples)}

    # init optimizer
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay, betas=(0.9, 0.99), eps=1e-8)

    # init dataloader
    random_loader = InfiniteDataLoader(train_dataset, batch_size=batch_size, pin_memory=True, num_workers=num_workers)
    Xr, Yr = random_loader.next()
    random_batch = [list(Xr.shape), list(Yr.shape), Xr.min().item() >= 0, Yr.min().item() >= -1]
    order = [i % len(train_dataset) for i in range(max_steps * batch_size)] if fixed_order else None
    batch_loader = InfiniteDataLoader(train_dataset, sampler=order, batch_size=batch_size, pin_memory=True,
                                      num_workers=num_workers)

    # training loop
    best_loss = None
    step = 0
    losses, evals, samples = [], [], []
    while True:

        t0 = time.time()

        # get the next batch, ship to device, and unpack it to input and target
        batch = batch_loader.next()
        batch = [t.to(device) for t in batch]
        X, Y = batch

        # feed into the model
        logits, loss = model(X, Y)

        # calculate the gradient, update the weights
        model.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        # wait for all CUDA work on the GPU to finish then calculate iteration time taken
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        t1 = time.time()
        losses.append(loss.item())

        # logging
        if step % 10 == 0:
            print(f"step {step} | loss {loss.item():.4f} | step time {(t1-t0)*1000:.2f}ms", file=sys.stderr)

        # evaluate the model
        if step > 0 and step % eval_interval == 0:
            train_loss = evaluate(model, train_dataset, batch_size=100, max_batches=10, device=device)
            test_loss  = evaluate(model, test_dataset,  batch_size=100, max_batches=10, device=device)
            writer.add_scalar("Loss/train", train_loss, step)
            writer.add_scalar("Loss/test", test_loss, step)
            writer.flush()
            print(f"step {step} train loss: {train_loss} test loss: {test_loss}", file=sys.stderr)
            evals.append([step, train_loss, test_loss])
            # save the model to disk if it has improved
            if best_loss is None or test_loss < best_loss:
                out_path = os.path.join(work_dir, "model.pt")
                print(f"test loss {test_loss} is the best so far, saving model to {out_path}", file=sys.stderr)
                torch.save(model.state_dict(), out_path)
                best_loss = test_loss

        # sample from the model
        if step > 0 and step % sample_interval == 0:
            samples.append(print_samples(num=10))

        step += 1
        # termination conditions
        if max_steps >= 0 and step >= max_steps:
            break

    # --sample-only: resume from the saved model and sample
    model.load_state_dict(torch.load(os.path.join(work_dir, 'model.pt')))
    greedy = generate(model, torch.zeros(3, 1, dtype=torch.long), block_size - 1, do_sample=False)
    top_k = 5
    samples.append(print_samples(num=50))
    return {"losses": losses, "evals": evals, "samples": samples, "n_params": n_params,
            "random_batch": random_batch, "greedy_shape": list(greedy.shape), "vocab_size": vocab_size,
            "block_size": block_size}


if __name__ == '__main__':
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20)))
