"""Project tooling that is not part of the installed package (documentation generators and checks)."""
