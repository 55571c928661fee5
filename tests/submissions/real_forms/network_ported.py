"""A Python 3 port of Nielsen's network.py as students write it: the backward pass renamed
back_propagation, returning (nabla_w, nabla_b) weights first, a feedforward that also returns its
weighted inputs, and the book's script at the bottom, which needs MNIST data that is not here."""

import mnist_loader_here  # noqa: F401  (beside the file in the student's repository; absent here)
import numpy as np


class Network:
    def __init__(self, sizes):
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.biases = [np.random.randn(y, 1) for y in sizes[1:]]
        self.weights = [np.random.randn(y, x) for x, y in zip(sizes[:-1], sizes[1:])]

    def feedforward(self, a, save=True):
        zs, activations = [], [a]
        for b, w in zip(self.biases, self.weights):
            zs.append(np.dot(w, a) + b)
            a = sigmoid(zs[-1])
            activations.append(a)
        return (zs, activations) if save else a

    def back_propagation(self, x, y):
        zs, activations = self.feedforward(x)
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        delta = (activations[-1] - y) * sigmoid_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].T)
        for l in range(2, self.num_layers):
            delta = np.dot(self.weights[-l + 1].T, delta) * sigmoid_prime(zs[-l])
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].T)
        return nabla_w, nabla_b


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))


import network_ported  # noqa: E402  (the book's shell session, pasted: the file imports itself)

training_data = np.load("data/mnist.npz")
net = network_ported.Network([784, 30, 10])
