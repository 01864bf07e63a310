"""What ``parley`` does in a terminal beyond thin commands: ``doctor`` (checks what the
configuration really does) and the ``chat`` client of a Parley server (``client``,
``chat``, ``credentials``)."""
