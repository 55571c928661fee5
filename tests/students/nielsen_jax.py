"""Nielsen's backprop written with jax.numpy: JAX arrays in JAX's default float32 come back."""

import jax.numpy as jnp


def sigmoid(z):
    return 1.0 / (1.0 + jnp.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))


class Network:
    def __init__(self, sizes):
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.biases = [jnp.zeros((y, 1)) for y in sizes[1:]]
        self.weights = [jnp.zeros((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]

    def backprop(self, x, y):
        weights = [jnp.asarray(w, jnp.float32) for w in self.weights]
        biases = [jnp.asarray(b, jnp.float32) for b in self.biases]
        activation = jnp.asarray(x, jnp.float32)
        activations, zs = [activation], []
        for b, w in zip(biases, weights):
            z = w @ activation + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = (activations[-1] - jnp.asarray(y, jnp.float32)) * sigmoid_prime(zs[-1])
        nabla_b, nabla_w = [delta], [delta @ activations[-2].T]
        for l in range(2, self.num_layers):
            delta = (weights[-l + 1].T @ delta) * sigmoid_prime(zs[-l])
            nabla_b.insert(0, delta)
            nabla_w.insert(0, delta @ activations[-l - 1].T)
        return nabla_b, nabla_w
