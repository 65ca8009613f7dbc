"""Control-plane backends that live outside Ballast's database: flagd files and Unleash."""
