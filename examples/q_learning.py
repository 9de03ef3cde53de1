"""Deep Q-learning: an agent learns, by trial and error, to walk a grid world to the goal.

Nobody tells the agent which move is right. It gets +1 for reaching the goal G, -1 for falling
into a pit X and -0.01 for every step, and must work out which of many earlier moves earned a
reward that comes only at the end. Q-learning learns Q(s, a), the discounted future reward of
taking move a in cell s and playing well afterwards, from the Bellman equation

    Q(s, a)  <-  r + gamma * max_a' Q(s', a')          (just r when s' ends the episode)

Deep Q-learning (as DeepMind's Atari player) approximates Q with a network and adds three things:
  * epsilon-greedy exploration: a random move with probability epsilon (falling from 1 to 0.05),
    otherwise the best-looking one (exploration versus exploitation);
  * a replay buffer: past moves (s, a, r, s', done) are stored and trained on in random
    mini-batches, so consecutive, correlated moves do not dominate a gradient step;
  * a target network: a copy of the Q-network, refreshed every few hundred steps, computes the
    targets r + gamma * max Q(s', .), so the network is not chasing its own moving output.
The state is the agent's cell, one-hot; the network could as well read pixels, as DQN does.

Run:  python examples/q_learning.py [--fast] [--out DIR]
Writes q_learning.png (reward per episode; the learned policy as arrows on the grid).
"""
import time

import numpy as np

import gpunet as gn
from gpunet import nn, optim
from gpunet import functional as F
from _common import parse_args, plt, save

LAYOUT = ("S...#...",
          ".##.#.#.",
          "....X.#.",
          ".#.##...",
          ".#...#X.",
          "...#...G")
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))          # up, down, left, right
ARROWS = "↑↓←→"
GOAL_REWARD, PIT_REWARD, STEP_REWARD, GAMMA = 1.0, -1.0, -0.01, 0.95


class GridWorld:
    """Walls '#' block a move (the agent stays put); G and X end the episode."""

    def __init__(self, layout=LAYOUT):
        self.grid = np.array([list(row) for row in layout])
        self.rows, self.cols = self.grid.shape
        self.n_states = self.rows * self.cols
        self.start = int(np.flatnonzero(self.grid.ravel() == "S")[0])
        kinds = self.grid.ravel()
        self.free = np.flatnonzero((kinds == ".") | (kinds == "S"))   # where an episode may start

    def step(self, state, action):
        """(next state, reward, done) for one move."""
        r, c = divmod(state, self.cols)
        nr, nc = r + MOVES[action][0], c + MOVES[action][1]
        if not (0 <= nr < self.rows and 0 <= nc < self.cols) or self.grid[nr, nc] == "#":
            nr, nc = r, c
        cell = self.grid[nr, nc]
        nxt = nr * self.cols + nc
        if cell == "G":
            return nxt, GOAL_REWARD, True
        if cell == "X":
            return nxt, PIT_REWARD, True
        return nxt, STEP_REWARD, False

    def greedy_path(self, policy, state, max_steps=50):
        """Follow policy[state] from state; the cells visited, and whether it reached the goal."""
        path = [state]
        for _ in range(max_steps):
            state, reward, done = self.step(state, int(policy[state]))
            path.append(state)
            if done:
                return path, reward == GOAL_REWARD
        return path, False


class ReplayBuffer:
    """A ring of the last ``capacity`` moves, sampled uniformly."""

    def __init__(self, capacity, rng):
        self.data = np.zeros((capacity, 5), np.float64)    # s, a, r, s', done
        self.capacity, self.size, self.next, self.rng = capacity, 0, 0, rng

    def push(self, s, a, r, s2, done):
        self.data[self.next] = (s, a, r, s2, done)
        self.next = (self.next + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, n):
        s, a, r, s2, done = self.data[self.rng.integers(0, self.size, size=n)].T
        return s.astype(np.int64), a.astype(np.int64), r, s2.astype(np.int64), done


def q_network(n_states, n_actions=4, hidden=64):
    return nn.Sequential(nn.Linear(n_states, hidden), nn.ReLU(), nn.Linear(hidden, n_actions))


def q_values(net, states, n_states):
    """Q(s, .) for a batch of cell indices, the cells one-hot encoded."""
    return net(gn.tensor(np.eye(n_states, dtype=np.float32)[states]))


def learn(net, target, optimizer, moves, n_states):
    """One gradient step of Q(s, a) towards r + gamma * max_a' Q_target(s', a') on replayed moves."""
    s, a, r, s2, done = moves
    with gn.no_grad():
        best_next = q_values(target, s2, n_states).numpy().max(1)
    goal = (r + GAMMA * (1 - done) * best_next).astype(np.float32)     # the Bellman target
    taken = gn.tensor(np.eye(4, dtype=np.float32)[a])                   # one-hot of the move a
    chosen = (q_values(net, s, n_states) * taken).sum(1)                # Q(s, a)
    loss = F.mse_loss(chosen, gn.tensor(goal))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def main(argv=None, seed=0):
    args = parse_args(__doc__, argv)
    episodes = 150 if args.fast else 400
    max_steps, batch, sync_every, warmup = 60, 64, 200, 200
    env = GridWorld()
    gn.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net, target = q_network(env.n_states), q_network(env.n_states)
    target.load_state_dict(net.state_dict())
    optimizer = optim.Adam(net.parameters(), lr=1e-3)
    buffer = ReplayBuffer(10_000, rng)
    all_cells = np.arange(env.n_states)
    print(f"grid world {env.rows}x{env.cols}: start S, goal G (+1), pits X (-1), walls #, "
          f"{STEP_REWARD} per step, discount {GAMMA}")

    rewards, successes, moves, start = [], [], 0, time.perf_counter()
    for episode in range(episodes):
        epsilon = max(0.05, 1.0 - episode / (0.6 * episodes))       # explore first, exploit later
        state, total = int(rng.choice(env.free)), 0.0                  # exploring starts
        for _ in range(max_steps):
            if rng.random() < epsilon:
                action = int(rng.integers(4))
            else:
                with gn.no_grad():
                    action = int(q_values(net, [state], env.n_states).numpy().argmax())
            nxt, reward, done = env.step(state, action)
            buffer.push(state, action, reward, nxt, done)
            state, total, moves = nxt, total + reward, moves + 1
            if buffer.size >= warmup:
                learn(net, target, optimizer, buffer.sample(batch), env.n_states)
            if moves % sync_every == 0:
                target.load_state_dict(net.state_dict())               # refresh the target network
            if done:
                break
        rewards.append(total)
        with gn.no_grad():
            policy = q_values(net, all_cells, env.n_states).numpy().argmax(1)
        successes.append(np.mean([env.greedy_path(policy, c)[1] for c in env.free]))
        if (episode + 1) % (episodes // 5) == 0:
            print(f"episode {episode + 1:4d}  epsilon {epsilon:.2f}  mean reward (last {episodes // 5}) "
                  f"{np.mean(rewards[-(episodes // 5):]):+.2f}  greedy policy reaches G from "
                  f"{successes[-1]:.0%} of cells  ({time.perf_counter() - start:.0f} s)")

    with gn.no_grad():
        q = q_values(net, all_cells, env.n_states).numpy()
    policy = q.argmax(1)
    path, reached = env.greedy_path(policy, env.start)
    print(f"\nafter {episodes} episodes ({moves} moves) [backend {gn.get_backend().name}, "
          f"{time.perf_counter() - start:.0f} s]: from S the greedy policy "
          f"{'reaches G in ' + str(len(path) - 1) + ' moves' if reached else 'does NOT reach G'}; "
          f"it reaches G from {successes[-1]:.0%} of the {len(env.free)} open cells")
    print("the learned policy (best move per cell):")
    for r in range(env.rows):
        cells = (env.grid[r, c] if env.grid[r, c] in "#XG" else ARROWS[policy[r * env.cols + c]]
                 for c in range(env.cols))
        print("  " + " ".join(cells))
    draw(env, rewards, successes, q, path, args.out)
    return {"rewards": rewards, "success_rate": successes[-1], "reached_goal": reached,
            "path_length": len(path) - 1, "policy": policy, "q": q}


def draw(env, rewards, successes, q, path, out):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.4), gridspec_kw={"width_ratios": [1, 1.1]})
    episodes = np.arange(1, len(rewards) + 1)
    ax1.plot(episodes, rewards, ".", color="C0", alpha=0.35, label="reward per episode")
    k = max(1, len(rewards) // 20)
    ax1.plot(episodes[k - 1:], np.convolve(rewards, np.ones(k) / k, "valid"), color="C0",
             label=f"mean of {k} episodes")
    ax1.set(xlabel="episode", ylabel="reward (sum over the episode)", ylim=(-1.7, 1.1),
            title="Learning from trial and error")
    ax1b = ax1.twinx()
    ax1b.plot(episodes, successes, color="C2", lw=1, label="greedy policy reaches G")
    ax1b.set_ylabel("greedy policy reaches G from (fraction of open cells)", color="C2")
    ax1b.set(ylim=(-0.02, 1.6), yticks=[0, 0.25, 0.5, 0.75, 1])
    lines = ax1.get_legend_handles_labels()
    more = ax1b.get_legend_handles_labels()
    ax1.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right", fontsize=8)

    value = q.max(1).reshape(env.rows, env.cols)
    value = np.where(np.isin(env.grid, ["#", "X", "G"]), np.nan, value)
    im = ax2.imshow(value, cmap="viridis")
    fig.colorbar(im, ax=ax2, fraction=0.035, label="max_a Q(s, a)")
    for r in range(env.rows):
        for c in range(env.cols):
            cell = env.grid[r, c]
            if cell in "#XG":
                colour = {"#": "0.25", "X": "tab:red", "G": "tab:green"}[cell]
                ax2.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, color=colour))
                ax2.text(c, r, "" if cell == "#" else cell, ha="center", va="center", color="w",
                         fontsize=14, weight="bold")
            else:
                dr, dc = MOVES[int(q[r * env.cols + c].argmax())]
                ax2.arrow(c - 0.25 * dc, r - 0.25 * dr, 0.3 * dc, 0.3 * dr, head_width=0.18,
                          head_length=0.15, color="w", length_includes_head=False)
    rows, cols = np.divmod(np.array(path), env.cols)
    ax2.plot(cols, rows, "-", color="orange", lw=3, alpha=0.6, label="greedy path from S")
    ax2.text(cols[0] - 0.33, rows[0] - 0.3, "S", ha="center", va="center", color="orange", weight="bold")
    ax2.set(xticks=[], yticks=[], title="Learned policy: best move per cell, colour = value")
    ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), fontsize=8, frameon=False)
    fig.tight_layout()
    save(fig, out, "q_learning.png")


if __name__ == "__main__":
    main()
