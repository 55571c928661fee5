"""A cs231n function form written with PyTorch (CPU) tensors: the arrays come back as torch.Tensor."""

import torch


def fc_net_loss(params, X, y, reg):
    """(loss, grads) of the ReLU net with the softmax loss averaged over N and 0.5 * reg * sum ||W||^2."""
    P = {k: torch.from_numpy(v) for k, v in params.items()}
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    L = len(P) // 2
    acts, zs = [X], []
    for l in range(1, L + 1):
        z = acts[-1] @ P[f"W{l}"] + P[f"b{l}"]
        zs.append(z)
        acts.append(torch.relu(z) if l < L else z)
    scores = acts[-1]
    N = X.shape[0]
    probs = torch.softmax(scores, dim=1)
    loss = -torch.log(probs[torch.arange(N), y]).mean()
    dout = probs.clone()
    dout[torch.arange(N), y] -= 1
    dout /= N
    grads = {}
    for l in range(L, 0, -1):
        grads[f"W{l}"] = acts[l - 1].T @ dout + reg * P[f"W{l}"]
        grads[f"b{l}"] = dout.sum(dim=0)
        if l > 1:
            dout = (dout @ P[f"W{l}"].T) * (zs[l - 2] > 0)
        loss = loss + 0.5 * reg * (P[f"W{l}"] ** 2).sum()
    return loss, grads
