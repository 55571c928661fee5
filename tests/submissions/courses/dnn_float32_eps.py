"""deeplearning.ai course 1 week 4, completed the way some students do: every array computed in
float32 (and cast back to float64 at the end), the cost written with log(AL + 1e-8). Right by the
course's own standard (gradient_check_n's difference is far below 2e-7), not to float64 precision.
(An epsilon inside dAL would make the gradient that of another cost, off by about 1e-8 / AL: the
course's own check flags that where AL is tiny, and so does the grader.)"""

import numpy as np

EPS = 1e-8


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z)), Z


def relu(Z):
    return np.maximum(0, Z), Z


def linear_activation_forward(A_prev, W, b, activation):
    A_prev, W, b = (np.asarray(v, np.float32) for v in (A_prev, W, b))
    Z = np.dot(W, A_prev) + b
    A, activation_cache = sigmoid(Z) if activation == "sigmoid" else relu(Z)
    return A, ((A_prev, W, b), activation_cache)


def L_model_forward(X, parameters):
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A, cache = linear_activation_forward(A, parameters["W" + str(l)], parameters["b" + str(l)], "relu")
        caches.append(cache)
    AL, cache = linear_activation_forward(A, parameters["W" + str(L)], parameters["b" + str(L)], "sigmoid")
    caches.append(cache)
    return AL.astype(np.float64), caches


def compute_cost(AL, Y):
    m = Y.shape[1]
    cost = -1 / m * np.sum(Y * np.log(AL + EPS) + (1 - Y) * np.log(1 - AL + EPS))
    return np.squeeze(cost)


def linear_activation_backward(dA, cache, activation):
    (A_prev, W, b), Z = cache
    if activation == "relu":
        dZ = np.array(dA, copy=True)
        dZ[Z <= 0] = 0
    else:
        s = 1 / (1 + np.exp(-Z))
        dZ = dA * s * (1 - s)
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    return np.dot(W.T, dZ), dW, db


def L_model_backward(AL, Y, caches):
    grads = {}
    L = len(caches)
    AL = np.asarray(AL, np.float32)
    Y = np.asarray(Y, np.float32).reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    dA, grads["dW" + str(L)], grads["db" + str(L)] = linear_activation_backward(dAL, caches[L - 1], "sigmoid")
    grads["dA" + str(L - 1)] = dA
    for l in reversed(range(L - 1)):
        dA, grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = linear_activation_backward(dA, caches[l], "relu")
        grads["dA" + str(l)] = dA
    return {k: v.astype(np.float64) for k, v in grads.items()}
