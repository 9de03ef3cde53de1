"""The shape of pytorch/examples time_sequence_prediction (generate_sine_wave.py + train.py), in PyTorch's names.

Only the import block picks the framework (SCRIPT_FRAMEWORK=torch, else gpunet). Differences
from the original: fewer and shorter waves (N, L), a shorter future, the files live in WORKDIR,
every closure loss is recorded, the first run saves the initial state_dict and the second loads
it, and the plots are drawn only when matplotlib is installed (Agg backend, into WORKDIR).

    python tests/script_shapes/time_sequence_prediction.py WORKDIR STEPS   # prints JSON
"""
import json
import os
import sys

import numpy as np

if os.environ.get("SCRIPT_FRAMEWORK") == "torch":
    import torch
    import torch.nn as nn
    import torch.optim as optim
else:
    import gpunet as torch
    import gpunet.nn as nn
    import gpunet.optim as optim

try:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
except ImportError:
    plt = None


def generate_sine_wave(path, T=20, L=1000, N=100):
    np.random.seed(2)

    x = np.empty((N, L), 'int64')
    x[:] = np.array(range(L)) + np.random.randint(-4 * T, 4 * T, N).reshape(N, 1)
    data = np.sin(x / 1.0 / T).astype('float64')
    torch.save(data, open(path, 'wb'))


class Sequence(nn.Module):
    def __init__(self):
        super(Sequence, self).__init__()
        self.lstm1 = nn.LSTMCell(1, 51)
        self.lstm2 = nn.LSTMCell(51, 51)
        self.linear = nn.Linear(51, 1)

    def forward(self, input, future = 0):
        outputs = []
        h_t = torch.zeros(input.size(0), 51, dtype=torch.double)
        c_t = torch.zeros(input.size(0), 51, dtype=torch.double)
        h_t2 = torch.zeros(input.size(0), 51, dtype=torch.double)
        c_t2 = torch.zeros(input.size(0), 51, dtype=torch.double)

        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for i in range(future):# if we should predict the future
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        outputs = torch.cat(outputs, dim=1)
        return outputs


def main(workdir, steps=15, N=8, L=50, future=1000, plot=True):
    data_path = os.path.join(workdir, 'traindata.pt')
    generate_sine_wave(data_path, L=L, N=N)
    # set random seed to 0
    np.random.seed(0)
    torch.manual_seed(0)
    # load data and make training set
    data = torch.load(data_path, weights_only=False)  # torch>=2.6 refuses ndarrays by default
    input = torch.from_numpy(data[3:, :-1])
    target = torch.from_numpy(data[3:, 1:])
    test_input = torch.from_numpy(data[:3, :-1])
    test_target = torch.from_numpy(data[:3, 1:])
    # build the model
    seq = Sequence()
    seq.double()
    init_path = os.path.join(workdir, 'sequence_init.pt')  # the same weights in both frameworks
    if os.path.exists(init_path):
        seq.load_state_dict(torch.load(init_path))
    else:
        torch.save(seq.state_dict(), init_path)
    criterion = nn.MSELoss()
    # use LBFGS as optimizer since we can load the whole data to train
    optimizer = optim.LBFGS(seq.parameters(), lr=0.8)
    losses, test_losses, pred_shapes = [], [], []
    #begin to train
    for i in range(steps):
        print('STEP: ', i, file=sys.stderr)
        def closure():
            optimizer.zero_grad()
            out = seq(input)
            loss = criterion(out, target)
            print('loss:', loss.item(), file=sys.stderr)
            losses.append(loss.item())
            loss.backward()
            return loss
        optimizer.step(closure)
        # begin to predict, no need to track gradient here
        with torch.no_grad():
            pred = seq(test_input, future=future)
            loss = criterion(pred[:, :-future], test_target)
            print('test loss:', loss.item(), file=sys.stderr)
            test_losses.append(loss.item())
            y = pred.detach().numpy()
        pred_shapes.append([type(y).__name__, str(y.dtype), list(y.shape)])
        # draw the result
        if plot and plt is not None:
            plt.figure(figsize=(30,10))
            plt.title('Predict future values for time sequences\n(Dashlines are predicted values)', fontsize=30)
            plt.xlabel('x', fontsize=20)
            plt.ylabel('y', fontsize=20)
            plt.xticks(fontsize=20)
            plt.yticks(fontsize=20)
            def draw(yi, color):
                plt.plot(np.arange(input.size(1)), yi[:input.size(1)], color, linewidth = 2.0)
                plt.plot(np.arange(input.size(1), input.size(1) + future), yi[input.size(1):], color + ':', linewidth = 2.0)
            draw(y[0], 'r')
            draw(y[1], 'g')
            draw(y[2], 'b')
            plt.savefig(os.path.join(workdir, 'predict%d.pdf'%i))
            plt.close()
    return {"losses": losses, "test_losses": test_losses, "pred": pred_shapes,
            "final_pred": y.tolist()}


if __name__ == '__main__':
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), future=int(sys.argv[3]) if len(sys.argv) > 3 else 20,
                          plot=os.environ.get("SCRIPT_PLOT") == "1")))
