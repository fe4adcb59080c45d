"""Fuzzing the real webhook app: generated webhook bodies and ERP events, counted.

`test_fuzz_app.py` serves `webhook_app` with a real uvicorn (`wanotify webhook`) on a
real database and throws seeded, generated input at both outside doors. The size comes
from `WANOTIFY_FUZZ_PROFILE` (`small`, the default, in `make test`; `full` in
`make fuzz`), the seed from `WANOTIFY_FUZZ_SEED`; one seed always makes the same input.
"""
