"""ijr's Hydra launchers (see :mod:`hydra_plugins.ijr_launchers.ijr_launchers`)."""
