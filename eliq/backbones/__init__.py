"""Pre-trained backbones, loaded from files on disk (offline) or a hub (on a user's machine)."""
