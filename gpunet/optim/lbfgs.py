"""L-BFGS as PyTorch computes it (a port of ``torch.optim.LBFGS``, itself after minFunc).

All parameters are handled as one flat vector (the gradients concatenated in parameter order);
the two-loop recursion, the step-size rules and the optional strong-Wolfe line search are
PyTorch's, step for step. Vectors are backend arrays (``p.backend.xp``); every scalar made from
them (dot products, norms, the step ``t``) is a host NumPy scalar of the parameters' dtype, so
float32 parameters give float32 arithmetic as in PyTorch and float64 parameters float64 (arrays are
always the left operand of array-scalar products, so a CuPy array never meets a NumPy scalar's
own operator).

Example:
    >>> lin = nn.Linear(3, 1)
    >>> xs, ys = gn.randn(8, 3), gn.randn(8, 1)
    >>> opt = optim.LBFGS(lin.parameters(), line_search_fn="strong_wolfe")
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = nn.MSELoss()(lin(xs), ys)
    ...     loss.backward()
    ...     return loss
    >>> first = float(opt.step(closure))
    >>> float(closure()) < first
    True
"""
from __future__ import annotations

import numbers

import numpy as np

from ..function import enable_grad
from .optimizer import Optimizer, _host, _is_array, _saved


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    xmin_bound, xmax_bound = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func, num, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """PyTorch's ``_strong_wolfe``: bracket, then zoom; returns (f, g, t, evaluations)."""
    d_norm = num(abs(d).max())
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = num(g_new.dot(d))
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = num(g_new.dot(d))
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                               bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = num(g_new.dot(d))
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


class LBFGS(Optimizer):
    """Limited-memory BFGS over all parameters flattened; ``step(closure)`` needs the closure.

    ``LBFGS(params, lr=1, max_iter=20, max_eval=None (max_iter * 5 // 4), tolerance_grad=1e-7,
    tolerance_change=1e-9, history_size=100, line_search_fn=None or "strong_wolfe")``. One
    ``step`` runs up to ``max_iter`` iterations, calling the closure up to ``max_eval`` times,
    and returns the loss of its first call. One parameter group only, as in PyTorch.

    Example:
        >>> w = nn.Parameter(gn.tensor(np.array([3.0, -2.0])))
        >>> opt = optim.LBFGS([w], history_size=10)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = ((w - 1.0) ** 2).sum()
        ...     loss.backward()
        ...     return loss
        >>> _ = opt.step(closure)
        >>> np.round(w.numpy(), 6)
        array([1., 1.])
    """

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        for name, value in (("max_iter", max_iter), ("history_size", history_size)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"LBFGS: {name} must be a positive int, got {value!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got {line_search_fn!r}")
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change, history_size=history_size,
                                      line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")

    # --- the parameters as one vector -------------------------------------------------
    def _plist(self):
        if len(self.param_groups) != 1:
            raise ValueError(f"LBFGS needs exactly one param group, got {len(self.param_groups)}")
        return self.param_groups[0]["params"]

    def _gather_flat_grad(self):
        ps = self._plist()
        xp = ps[0].backend.xp
        return xp.concatenate([xp.zeros(p._data.size, p.dtype) if p.grad is None else p.grad._data.reshape(-1)
                               for p in ps])

    def _add_grad(self, step_size, update):
        offset = 0
        for p in self._plist():
            n = p._data.size
            p._data += update[offset:offset + n].reshape(p._data.shape) * step_size
            offset += n

    def _directional_evaluate(self, closure, x, t, d):
        self._add_grad(t, d)
        with enable_grad():  # the closure records its graph even under no_grad
            loss = float(closure())
        flat_grad = self._gather_flat_grad()
        for p, saved in zip(self._plist(), x):
            p._data[...] = saved
        return loss, flat_grad

    def step(self, closure=None):
        """Run up to ``max_iter`` L-BFGS iterations; ``closure`` (required) clears the gradients,
        computes the loss, calls ``backward()`` and returns the loss. Returns its first loss."""
        if closure is None or not callable(closure):
            raise TypeError("LBFGS.step(closure): LBFGS needs a closure, a function that clears the "
                            "gradients, computes the loss, calls backward() and returns the loss; got "
                            f"{type(closure).__name__}")
        ps = self._plist()
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]
        state = self.state.setdefault(id(ps[0]), {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        with enable_grad():
            orig_loss = closure()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        dtype = flat_grad.dtype.type
        num = lambda v: dtype(float(v))  # noqa: E731  a host scalar of the parameters' dtype
        opt_cond = num(abs(flat_grad).max()) <= tolerance_grad
        if opt_cond:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag, prev_flat_grad, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro, H_diag = [], [], [], 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = num(y.dot(s))
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / num(y.dot(y))
                num_old = len(old_dirs)
                if "al" not in state:
                    state["al"] = [None] * history_size
                al = state["al"]
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = num(old_stps[i].dot(q)) * ro[i]
                    q += old_dirs[i] * -al[i]
                d = r = q * H_diag
                for i in range(num_old):
                    be_i = num(old_dirs[i].dot(r)) * ro[i]
                    r += old_stps[i] * (al[i] - be_i)
            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.copy()
            else:
                prev_flat_grad[...] = flat_grad
            prev_loss = loss

            t = min(1.0, 1.0 / num(abs(flat_grad).sum())) * lr if state["n_iter"] == 1 else lr
            gtd = num(flat_grad.dot(d))
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                if line_search_fn != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                x_init = [p._data.copy() for p in ps]
                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    lambda x, t, d: self._directional_evaluate(closure, x, t, d), num, x_init, t, d, loss,
                    flat_grad, gtd, max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = num(abs(flat_grad).max()) <= tolerance_grad
            else:
                self._add_grad(t, d)
                if n_iter != max_iter:  # re-evaluate only if another iteration follows
                    with enable_grad():
                        loss = float(closure())
                    flat_grad = self._gather_flat_grad()
                    opt_cond = num(abs(flat_grad).max()) <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if num(abs(d * t).max()) <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss

    # --- state: PyTorch's layout, under parameter 0 --------------------------------------
    def state_dict(self):
        """As PyTorch: all the state under parameter 0 (``d``, ``t``, ``old_dirs``, ``old_stps``,
        ``ro``, ``H_diag``, ``prev_flat_grad``, ``prev_loss``, ``al``, ``func_evals``, ``n_iter``),
        arrays, scalars and lists of them as host copies in gn Tensors (PyTorch's tensors)."""
        out = super().state_dict()
        live = self.state.get(id(self._plist()[0]))
        out["state"] = {0: {k: _saved(v) for k, v in live.items()}} if live else {}
        return out

    def load_state_dict(self, state_dict):
        """Restore ``state_dict()`` (vectors go to the parameters' backend and dtype)."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("load_state_dict: expected a dict with 'state' and 'param_groups' "
                             "(from optimizer.state_dict())")
        super().load_state_dict({"state": {}, "param_groups": state_dict["param_groups"]})
        ps = self._plist()
        saved = dict(state_dict["state"]).get(0, dict(state_dict["state"]).get("0"))
        if saved:
            dtype = np.result_type(*[p.dtype for p in ps])
            self.state = {id(ps[0]): {k: _to_backend(v, ps[0].backend, dtype) for k, v in saved.items()}}


def _to_backend(v, backend, dtype):
    if isinstance(v, (list, tuple)):
        return [_to_backend(e, backend, dtype) for e in v]
    if isinstance(v, np.floating) or _is_array(v) and np.ndim(_host(v)) == 0:
        return dtype.type(float(_host(v)))  # t, H_diag, ro, al: scalars of the parameters' dtype
    if isinstance(v, np.integer):
        return int(v)
    if _is_array(v):
        return backend.asarray(np.array(_host(v), dtype=dtype))
    return v
