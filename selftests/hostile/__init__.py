"""The hostile lab: small misbehaving servers of the suite's own, on loopback addresses the lab
does not use, proving that no misbehaviour yields a pass, leaks a secret, reaches DATA or runs
without bound."""
