"""The shape of PyTorch's beginner tutorial "Training a classifier" (cifar10_tutorial), in PyTorch's names.

Only the import block picks the framework (SCRIPT_FRAMEWORK=torch, else gpunet). Differences
from the tutorial: random (N, 3, 32, 32) tensors in a TensorDataset instead of torchvision's
CIFAR10, shuffle=False (orders cannot be shared across frameworks), no image plotting, every
mini-batch loss is recorded, and the first run saves the initial state_dict, the second loads it.

    python tests/script_shapes/cifar10_tutorial.py WORKDIR EPOCHS   # prints JSON
"""
import json
import os
import sys

import numpy as np

if os.environ.get("SCRIPT_FRAMEWORK") == "torch":
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.optim as optim
    from torch.utils.data import TensorDataset
else:
    import gpunet as torch
    import gpunet.nn as nn
    import gpunet.nn.functional as F
    import gpunet.optim as optim
    from gpunet.utils.data import TensorDataset

classes = ('plane', 'car', 'bird', 'cat',
           'deer', 'dog', 'frog', 'horse', 'ship', 'truck')


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)  # flatten all dimensions except batch
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


def random_cifar(n, seed):
    """Stands in for CIFAR10 with ToTensor + Normalize((0.5,)*3, (0.5,)*3): values in [-1, 1)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (n, 3, 32, 32)).astype(np.float32)
    labels = rng.permutation(np.arange(n) % 10).astype(np.int64)  # every class occurs
    return TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))


def main(workdir, epochs=2, n_train=64, n_test=40, batch_size=4, log_every=2000):
    device = torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')
    print(device, file=sys.stderr)

    trainset = random_cifar(n_train, seed=3)
    trainloader = torch.utils.data.DataLoader(trainset, batch_size=batch_size,
                                              shuffle=False, num_workers=2)
    testset = random_cifar(n_test, seed=4)
    testloader = torch.utils.data.DataLoader(testset, batch_size=batch_size,
                                             shuffle=False, num_workers=2)

    dataiter = iter(trainloader)
    images, labels = next(dataiter)
    print(' '.join(f'{classes[labels[j]]:5s}' for j in range(batch_size)), file=sys.stderr)

    net = Net()
    init_path = os.path.join(workdir, "cifar_init.pt")  # the same weights in both frameworks
    if os.path.exists(init_path):
        net.load_state_dict(torch.load(init_path, weights_only=True))
    else:
        torch.save(net.state_dict(), init_path)

    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)

    losses = []
    for epoch in range(epochs):  # loop over the dataset multiple times

        running_loss = 0.0
        for i, data in enumerate(trainloader, 0):
            # get the inputs; data is a list of [inputs, labels]
            inputs, labels = data

            # zero the parameter gradients
            optimizer.zero_grad()

            # forward + backward + optimize
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()

            # print statistics
            running_loss += loss.item()
            losses.append(loss.item())
            if i % log_every == log_every - 1:    # print every 2000 mini-batches
                print(f'[{epoch + 1}, {i + 1:5d}] loss: {running_loss / log_every:.3f}', file=sys.stderr)
                running_loss = 0.0

    print('Finished Training', file=sys.stderr)

    PATH = os.path.join(workdir, 'cifar_net.pth')
    torch.save(net.state_dict(), PATH)

    dataiter = iter(testloader)
    images, labels = next(dataiter)
    print('GroundTruth: ', ' '.join(f'{classes[labels[j]]:5s}' for j in range(4)), file=sys.stderr)

    net = Net()
    net.load_state_dict(torch.load(PATH, weights_only=True))

    outputs = net(images)
    _, predicted = torch.max(outputs, 1)
    first_predicted = [classes[predicted[j]] for j in range(4)]
    print('Predicted: ', ' '.join(f'{classes[predicted[j]]:5s}' for j in range(4)), file=sys.stderr)

    correct = 0
    total = 0
    # since we're not training, we don't need to calculate the gradients for our outputs
    with torch.no_grad():
        for data in testloader:
            images, labels = data
            # calculate outputs by running images through the network
            outputs = net(images)
            # the class with the highest energy is what we choose as prediction
            _, predicted = torch.max(outputs.data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()

    print(f'Accuracy of the network on the {total} test images: {100 * correct // total} %', file=sys.stderr)

    # prepare to count predictions for each class
    correct_pred = {classname: 0 for classname in classes}
    total_pred = {classname: 0 for classname in classes}

    # again no gradients needed
    with torch.no_grad():
        for data in testloader:
            images, labels = data
            outputs = net(images)
            _, predictions = torch.max(outputs, 1)
            # collect the correct predictions for each class
            for label, prediction in zip(labels, predictions):
                if label == prediction:
                    correct_pred[classes[label]] += 1
                total_pred[classes[label]] += 1

    # print accuracy for each class
    accuracy = {}
    for classname, correct_count in correct_pred.items():
        accuracy[classname] = 100 * float(correct_count) / total_pred[classname]
        print(f'Accuracy for class: {classname:5s} is {accuracy[classname]:.1f} %', file=sys.stderr)

    net.to(device)
    inputs, labels = data[0].to(device), data[1].to(device)
    return {"losses": losses, "first_predicted": first_predicted, "correct": correct, "total": total,
            "class_accuracy": accuracy, "device": str(device)}


if __name__ == '__main__':
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2)))
