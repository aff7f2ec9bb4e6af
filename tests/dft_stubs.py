"""Stand-ins for the VASP and pw.x executables (neither is installed here), for the tests of the `vasp` and `qe`
oracles: each reads the input ASE wrote in its working folder, writes the output files ASE reads back (OUTCAR and
vasprun.xml; pw.x's output on stdout) with a made-up energy (eV) -0.1 Σ|r|², forces 0.2 r (eV/Å) and a constant
stress, and reports a version (VASP 6.4.2, PWSCF 7.2). A structure holding carbon fails (exit code 1, an error
message on stdout), as a crashed DFT run would. `install(folder)` writes both, returns their paths.
"""

from __future__ import annotations

import sys
from pathlib import Path

VASP = r'''
import numpy as np
from ase.io import read

atoms = read("POSCAR", format="vasp")
print(" running on    1 total cores")
if "C" in atoms.get_chemical_symbols():
    print(" VERY BAD NEWS! internal error in subroutine FAKE: carbon refused")
    raise SystemExit(1)
r = atoms.positions
energy, forces = -0.1 * float((r ** 2).sum()), 0.2 * r
stress_kbar = np.diag([1.0, 2.0, 3.0])  # VASP's sign and unit: kBar, positive = compressive
v = lambda row: " ".join(f"{x:.8f}" for x in row)
vs = lambda name, rows: f'<varray name="{name}">' + "".join(f"<v>{v(x)}</v>" for x in rows) + "</varray>"
species = "".join(f"<rc><c>{s}</c><c>1</c></rc>" for s in atoms.get_chemical_symbols())
crystal = "<crystal>" + vs("basis", atoms.cell.array) + "</crystal>"
structure = crystal + vs("positions", atoms.get_scaled_positions())
e = f'<i name="e_fr_energy">{energy:.8f}</i><i name="e_wo_entrp">{energy:.8f}</i><i name="e_0_energy">{energy:.8f}</i>'
open("vasprun.xml", "w").write(
    '<?xml version="1.0" encoding="ISO-8859-1"?><modeling>'
    '<generator><i name="version" type="string">6.4.2</i></generator>'
    '<kpoints><varray name="kpointlist"><v>0 0 0</v></varray><varray name="weights"><v>1</v></varray></kpoints>'
    '<parameters><i name="ISPIN" type="int">1</i></parameters>'
    f'<atominfo><array name="atoms"><set>{species}</set></array></atominfo>'
    f'<structure name="initialpos">{structure}</structure>'
    f'<calculation><scstep><energy>{e}</energy></scstep><structure>{structure}</structure>'
    f'{vs("forces", forces)}{vs("stress", stress_kbar)}<energy>{e}</energy></calculation>'
    '</modeling>')
open("OUTCAR", "w").write(" vasp.6.4.2 18Apr23 (build Jun 16 2023 10:00:00) complex\n"
                          "   NBANDS=       8\n"
                          " ------------------------ aborting loop because EDIFF is reached ----\n")
'''

PWX = r'''
import sys
import numpy as np
from ase.io.espresso import read_espresso_in
from ase.units import Bohr, Ry

atoms = read_espresso_in(open(sys.argv[sys.argv.index("-in") + 1]))
print("     Program PWSCF v.7.2 starts on  1Jan2026 at 12: 0: 0 ")
if "C" in atoms.get_chemical_symbols():
    print("     Error in routine fake (1):\n     carbon refused")
    raise SystemExit(1)
alat = atoms.cell.lengths()[0] / Bohr  # a.u.
r = atoms.positions
energy, forces = -0.1 * float((r ** 2).sum()), 0.2 * r
print(f"     lattice parameter (alat)  =  {alat:12.4f}  a.u.")
print(f"     celldm(1)=  {alat:.6f}  celldm(2)=   0.000000  celldm(3)=   0.000000")
print(f"     number of atoms/cell      = {len(atoms):12d}")
print(f"     number of atomic types    = {len(set(atoms.numbers)):12d}")
print("     crystal axes: (cart. coord. in units of alat)")
for i, a in enumerate(atoms.cell.array / (alat * Bohr)):
    print(f"               a({i + 1}) = ( {a[0]:10.6f} {a[1]:10.6f} {a[2]:10.6f} )  ")
print("   site n.     atom                  positions (alat units)")
for i, (s, p) in enumerate(zip(atoms.get_chemical_symbols(), r / (alat * Bohr))):
    print(f"         {i + 1}           {s}  tau(   {i + 1}) = (  {p[0]:11.7f}  {p[1]:11.7f}  {p[2]:11.7f}  )")
print(f"!    total energy              = {energy / Ry:17.8f} Ry")
print("     Forces acting on atoms (cartesian axes, Ry/au):\n")
for i, f in enumerate(forces * Bohr / Ry):
    print(f"     atom    {i + 1} type  1   force = {f[0]:14.8f}{f[1]:14.8f}{f[2]:14.8f}")
s = -np.diag([1e-4, 2e-4, 3e-4])
print("     total   stress  (Ry/bohr**3)                   (kbar)     P=       -1.00")
for row in s:
    print(f"  {row[0]:12.8f} {row[1]:12.8f} {row[2]:12.8f}  0.00 0.00 0.00")
print("     JOB DONE.")
'''


def install(folder: Path) -> dict[str, Path]:
    """Write the executables `vasp_std` and `pw.x` into `folder` (run by this test interpreter); returns their
    paths by oracle name (vasp, qe)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for oracle, name, code in (("vasp", "vasp_std", VASP), ("qe", "pw.x", PWX)):
        path = folder / name
        path.write_text(f"#!{sys.executable}\n{code}")
        path.chmod(0o755)
        out[oracle] = path
    return out
