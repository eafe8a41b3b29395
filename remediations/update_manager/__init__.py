"""Remediations on Azure Update Manager machines and schedules (Azure VMs, Arc-enabled servers, maintenance
configurations), one module each: set-customer-managed-schedules, enable-periodic-assessment,
reinstall-patch-extension, assess-patches-now, install-patches-now, start-machines-before-window,
restart-machine, reassign-maintenance-configuration, exclude-failed-packages; with what they share beside
them: `machines` (a machine's patch facts as ARM and Resource Graph give them) and `timing` (when a
schedule next runs, and the deadlines a change before a run must meet).
"""
