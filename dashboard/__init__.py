"""The Streamlit dashboard: thin pages over `core` (`streamlit run dashboard/server.py`)."""
