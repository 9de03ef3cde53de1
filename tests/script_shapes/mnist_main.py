"""The shape of pytorch/examples mnist/main.py, written in PyTorch's names (issue 22).

Only the import block picks the framework (SCRIPT_FRAMEWORK=torch, else gpunet). Differences
from the original, all for a small cross-framework comparison: random 28x28 images in a
TensorDataset instead of torchvision's MNIST; Net takes its two dropout probabilities (default
the original 0.25 and 0.5; the comparison passes 0.0, since masks cannot be shared); every
training loss is recorded; the first run saves the initial state_dict and the second loads it.

    python tests/script_shapes/mnist_main.py WORKDIR [--epochs N ...]   # prints JSON
"""
import argparse
import json
import os
import sys

import numpy as np

if os.environ.get("SCRIPT_FRAMEWORK") == "torch":
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.optim as optim
    from torch.optim.lr_scheduler import StepLR
    from torch.utils.data import TensorDataset
else:
    import gpunet as torch
    import gpunet.nn as nn
    import gpunet.nn.functional as F
    import gpunet.optim as optim
    from gpunet.optim.lr_scheduler import StepLR
    from gpunet.utils.data import TensorDataset


class Net(nn.Module):
    def __init__(self, dropout1=0.25, dropout2=0.5):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(dropout1)
        self.dropout2 = nn.Dropout(dropout2)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def train(args, model, device, train_loader, optimizer, epoch, losses):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if batch_idx % args.log_interval == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()), file=sys.stderr)
            if args.dry_run:
                break


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction='sum').item()  # sum up batch loss
            pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()

    test_loss /= len(test_loader.dataset)

    print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'.format(
        test_loss, correct, len(test_loader.dataset),
        100. * correct / len(test_loader.dataset)), file=sys.stderr)
    return test_loss, correct


def random_mnist(n, seed):
    """Stands in for datasets.MNIST(..., transform=Normalize(...)): N(0, 1) images, labels 0-9."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, n).astype(np.int64)
    return TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))


def main(workdir, argv=(), n_train=32, n_test=32, dropout=(0.25, 0.5)):
    # Training settings
    parser = argparse.ArgumentParser(description='PyTorch MNIST Example')
    parser.add_argument('--batch-size', type=int, default=64, metavar='N')
    parser.add_argument('--test-batch-size', type=int, default=1000, metavar='N')
    parser.add_argument('--epochs', type=int, default=14, metavar='N')
    parser.add_argument('--lr', type=float, default=1.0, metavar='LR')
    parser.add_argument('--gamma', type=float, default=0.7, metavar='M')
    parser.add_argument('--no-accel', action='store_true')
    parser.add_argument('--dry-run', action='store_true')
    parser.add_argument('--seed', type=int, default=1, metavar='S')
    parser.add_argument('--log-interval', type=int, default=10, metavar='N')
    parser.add_argument('--save-model', action='store_true')
    args = parser.parse_args(list(argv))

    use_accel = not args.no_accel and torch.accelerator.is_available()

    torch.manual_seed(args.seed)

    if use_accel:
        device = torch.accelerator.current_accelerator()
    else:
        device = torch.device("cpu")

    train_kwargs = {'batch_size': args.batch_size}
    test_kwargs = {'batch_size': args.test_batch_size}
    if use_accel:
        accel_kwargs = {'num_workers': 1,
                        'persistent_workers': True,
                        'pin_memory': True,
                        'shuffle': True}
        train_kwargs.update(accel_kwargs)
        test_kwargs.update(accel_kwargs)

    dataset1 = random_mnist(n_train, seed=1)
    dataset2 = random_mnist(n_test, seed=2)
    train_loader = torch.utils.data.DataLoader(dataset1, **train_kwargs)
    test_loader = torch.utils.data.DataLoader(dataset2, **test_kwargs)

    model = Net(*dropout).to(device)
    init_path = os.path.join(workdir, "mnist_init.pt")  # the same weights in both frameworks
    if os.path.exists(init_path):
        model.load_state_dict(torch.load(init_path, weights_only=True))
    else:
        torch.save(model.state_dict(), init_path)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)

    losses, tests = [], []
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch, losses)
        test_loss, correct = test(model, device, test_loader)
        tests.append({"test_loss": test_loss, "correct": correct, "lr": scheduler.get_last_lr()[0]})
        scheduler.step()

    if args.save_model:
        torch.save(model.state_dict(), os.path.join(workdir, "mnist_cnn.pt"))
        reloaded = Net(*dropout)
        reloaded.load_state_dict(torch.load(os.path.join(workdir, "mnist_cnn.pt"), weights_only=True))
    return {"losses": losses, "tests": tests, "device": str(device), "use_accel": bool(use_accel)}


if __name__ == '__main__':
    print(json.dumps(main(sys.argv[1], sys.argv[2:], dropout=(0.0, 0.0))))
