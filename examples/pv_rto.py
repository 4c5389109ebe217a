"""Duty-cycle RTO of the PV converter: learned models (IC-LSTM, ICLRNN, LSTM) vs first principles and P&O.

Run: .venv/bin/python examples/pv_rto.py [--quick]   (models are trained at first use and cached under
$ICCTRL_CACHE_DIR/pv; the full run takes a few minutes on a laptop CPU)
"""

import sys

from icctrl._io import write_json
from icctrl.pv import plot, run_pv, table

if __name__ == "__main__":
    res = run_pv(quick="--quick" in sys.argv)
    print(table(res))
    for name, cert in res["certificates"].items():
        print(f"{name}: whole problem convex = {cert['horizon']['problem']['convex']}; "
              f"reason: {(cert['horizon']['problem']['reasons'] or ['-'])[0]}")
    print("plot:", plot(res, "icctrl-out/pv/pv_closed_loop.png"))
    write_json("icctrl-out/pv/pv.json", {k: v for k, v in res.items() if k != "traces"})
