"""Independent evidence for the grader's tests: central differences of a course's loss, written here."""

import numpy as np


def central_differences(f, arrays, h=1e-6):
    """df/da for every array of ``arrays`` (changed in place and restored), by central differences."""
    out = []
    for a in arrays:
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + h
            up = f()
            a[i] = old - h
            down = f()
            a[i] = old
            g[i] = (up - down) / (2 * h)
        out.append(g)
    return out


def central_differences_by_name(f, params: dict, h=1e-6) -> dict:
    """:func:`central_differences` of a dict of arrays, by key."""
    return dict(zip(params, central_differences(f, list(params.values()), h)))
