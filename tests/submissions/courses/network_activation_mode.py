"""A Python 3 port of Nielsen's network.py with a constructor argument of its own:
Network(sizes, activation_mode), "sigmoid" (the book's) or "relu"; the quadratic cost."""

import numpy as np


class Network:
    def __init__(self, sizes: list, activation_mode: str):
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.activation_mode = activation_mode
        self.biases = [np.random.randn(y, 1) for y in sizes[1:]]
        self.weights = [np.random.randn(y, x) for x, y in zip(sizes[:-1], sizes[1:])]

    def activation(self, z):
        return sigmoid(z) if self.activation_mode == "sigmoid" else np.maximum(z, 0)

    def activation_prime(self, z):
        return sigmoid_prime(z) if self.activation_mode == "sigmoid" else (z > 0).astype(float)

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights):
            a = self.activation(np.dot(w, a) + b)
        return a

    def backprop(self, x, y):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = self.activation(z)
            activations.append(activation)
        delta = self.cost_derivative(activations[-1], y) * self.activation_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, self.num_layers):
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * self.activation_prime(zs[-l])
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return (nabla_b, nabla_w)

    def cost_derivative(self, output_activations, y):
        return output_activations - y


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))
