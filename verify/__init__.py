"""fnnjax's verification suite: one check per formula of FORMULAS.md (F1-F27)."""
