"""wanotify core: every rule of sending PO notices over WhatsApp and tracking them.

The dashboard, the webhook app, the worker and the CLI are thin layers over this package.
"""
