"""``python -m ui.serve run app.py ...``: Streamlit's own command line, with one fix.

Streamlit still honours the old ``pages/`` folder convention until the first run of ``app.py``
calls ``st.navigation``: when the first request after a (re)start asks for a page's address
(a reload of ``/train``, a bookmarked link, phones reconnecting to a restarted classroom
server), that page runs without ``app.py`` (no language switch, no workspace routing, the
folder's file names as the menu) and the whole server stays that way until someone opens the
root. This app always routes with ``st.navigation``, so the old convention is switched off
before the server starts.
"""

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web.cli import main

PagesManager.uses_pages_directory = False

if __name__ == "__main__":
    main(prog_name="streamlit")
