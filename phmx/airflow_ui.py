"""``make airflow``: Airflow's UI and scheduler on 127.0.0.1, with how to log in.

Runs ``airflow standalone`` (API server + scheduler + DAG processor + triggerer) with the
embedded settings of :mod:`phmx.airflow_env`. The simple auth manager creates an ``admin``
user and writes its generated password to ``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from phmx.airflow_env import airflow_bin, airflow_env, ensure_db


def main() -> int:
    env = airflow_env()
    env.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    ensure_db(env)
    home = Path(env["AIRFLOW_HOME"])
    port = env["AIRFLOW__API__PORT"]
    sys.stdout.write(
        f"Airflow UI: http://127.0.0.1:{port}  (bound to 127.0.0.1 only)\n"
        f"Log in as 'admin'; the password is in {home / 'simple_auth_manager_passwords.json.generated'}\n"
        "DAG: phm_exchange. Trigger it with conf {\"period\": \"YYYY-MM\"} or \"all\". Ctrl-C stops everything.\n"
    )
    sys.stdout.flush()
    try:
        return subprocess.call([airflow_bin(), "standalone"], env=env)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
