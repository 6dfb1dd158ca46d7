"""The systemd shell: notifications (``notify``), journald logging (``logs``), and the argv of
``systemctl`` and ``journalctl`` built as pure functions (``systemctl``, ``journal``, ``instances``)."""
