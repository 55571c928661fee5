"""Perceptrons (F4): learn AND, OR and NOT with Rosenblatt's rule, fail on XOR, then solve XOR
with the 2-2-1 threshold net.

Run: python examples/perceptron.py [--epochs 20]
"""

import argparse

import fnnjax
from fnnjax import data


def truth_table(x, y) -> str:
    return "  ".join(f"{tuple(int(v) for v in xi)}->{int(yi)}" for xi, yi in zip(x, y))


def main(epochs: int) -> None:
    print(f"Perceptron rule w <- w + eta (t - y) x, eta = 1, at most {epochs} epochs")
    for gate in ("and", "or", "not", "xor"):
        x, t = data.logic_gate(gate)
        result = fnnjax.train_perceptron(x, t, epochs=epochs)
        errors = " ".join(str(int(e)) for e in result.errors[:10])
        if result.converged:
            learned = fnnjax.threshold_unit(x, result.w, result.b)
            print(
                f"{gate.upper():>4}: learned in {result.epochs_to_converge} epochs (the next is error-free), "
                f"w = {result.w.tolist()}, b = {float(result.b)}; {truth_table(x, learned)}"
            )
        else:
            print(
                f"{gate.upper():>4}: no error-free epoch in {epochs} (errors per epoch: {errors} ...); "
                "XOR is not linearly separable"
            )
    mlp, params = fnnjax.xor_network()
    x, t = data.logic_gate("xor")
    y = fnnjax.forward(mlp, params, x)[:, 0]
    print(
        "2-2-1 threshold net, h1 = step(x1 + x2 - 0.5) (OR), h2 = step(x1 + x2 - 1.5) (AND), y = step(h1 - h2 - 0.5):"
    )
    print(f" XOR: {truth_table(x, y)}  (correct: {bool((y == t).all())})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="bound on the passes (default 20)")
    main(parser.parse_args().epochs)
