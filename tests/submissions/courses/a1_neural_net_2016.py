"""cs231n assignment 1 (2016) neural_net.py, written for the grader's tests: TwoLayerNet with
loss(X, y=None, reg=0.0) and the L2 term 0.5 * reg * (sum W1^2 + sum W2^2); 2-space indentation."""

# fmt: off
# ruff: noqa: F401, UP004, UP010, UP029
# (the course file as handed in: py2-compatible header, 2-space indentation)
from __future__ import print_function

from builtins import range

import numpy as np


class TwoLayerNet(object):
  """A two-layer fully-connected network: affine - ReLU - affine - softmax."""

  def __init__(self, input_size, hidden_size, output_size, std=1e-4):
    self.params = {}
    self.params['W1'] = std * np.random.randn(input_size, hidden_size)
    self.params['b1'] = np.zeros(hidden_size)
    self.params['W2'] = std * np.random.randn(hidden_size, output_size)
    self.params['b2'] = np.zeros(output_size)

  def loss(self, X, y=None, reg=0.0):
    W1, b1 = self.params['W1'], self.params['b1']
    W2, b2 = self.params['W2'], self.params['b2']
    N, D = X.shape

    h = np.maximum(0, X.dot(W1) + b1)
    scores = h.dot(W2) + b2
    if y is None:
      return scores

    shifted = scores - np.max(scores, axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= np.sum(probs, axis=1, keepdims=True)
    loss = -np.sum(np.log(probs[np.arange(N), y])) / N
    loss += 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))

    grads = {}
    dscores = probs.copy()
    dscores[np.arange(N), y] -= 1
    dscores /= N
    grads['W2'] = h.T.dot(dscores) + reg * W2
    grads['b2'] = np.sum(dscores, axis=0)
    dh = dscores.dot(W2.T)
    dh[h <= 0] = 0
    grads['W1'] = X.T.dot(dh) + reg * W1
    grads['b1'] = np.sum(dh, axis=0)
    return loss, grads

  def predict(self, X):
    return np.argmax(self.loss(X), axis=1)
