"""kmipd's KMIP 1.0-1.4 tables against PyKMIP's kmip.core.enums.

The tables were generated from PyKMIP once; this reads PyKMIP afresh, on its own terms (it
does not reuse scripts/gen-kmip-tables.py), and compares with what the compiled tables
say through tests/tools/spec_dump. enums.py marks the version that introduced each member
only with "# KMIP x.y" comments, so the source is read for those; the numbers come from
the enum classes themselves."""
import inspect
import re
import subprocess

import pytest
from kmip.core import enums

# The enumerations vCenter's KMIP client uses, with the tag of the field carrying them.
VCENTER_FAMILIES = {
    "Operation": "OPERATION",
    "ObjectType": "OBJECT_TYPE",
    "CryptographicAlgorithm": "CRYPTOGRAPHIC_ALGORITHM",
    "State": "STATE",
    "ResultReason": "RESULT_REASON",
    "ResultStatus": "RESULT_STATUS",
    "NameType": "NAME_TYPE",
    "KeyFormatType": "KEY_FORMAT_TYPE",
    "CryptographicUsageMask": "CRYPTOGRAPHIC_USAGE_MASK",
    "RevocationReasonCode": "REVOCATION_REASON_CODE",
    "LinkType": "LINK_TYPE",
    "QueryFunction": "QUERY_FUNCTION",
}

# Values enums.py files under "# KMIP 1.0" although the specifications (and PyKMIP's own
# glossary, docs/source/glossary.rst) introduce them later: kmipd follows the
# specification. (family class, member) -> the version kmipd must give.
PYKMIP_SECTION_ERRATA = {
    ("ResultReason", "ENCODING_OPTION_ERROR"): "1.1",
    ("ResultReason", "KEY_VALUE_NOT_PRESENT"): "1.2",
    ("ResultReason", "ATTESTATION_REQUIRED"): "1.2",
    ("ResultReason", "ATTESTATION_FAILED"): "1.2",
    ("ResultReason", "SENSITIVE"): "1.4",
    ("ResultReason", "NOT_EXTRACTABLE"): "1.4",
    ("ResultReason", "OBJECT_ALREADY_EXISTS"): "1.4",
}

KMIP_1 = ("1.0", "1.1", "1.2", "1.3", "1.4")


def pykmip_sections():
    """{class name: [(member name, "x.y"), ...]} for every member that enums.py lists
    under a "# KMIP x.y" comment, in source order."""
    source = inspect.getsource(enums)
    classes, current, version = {}, None, None
    for line in source.splitlines():
        m = re.match(r"^class (\w+)\(", line)
        if m:
            current, version = m.group(1), None
            classes[current] = []
            continue
        if line and not line[0].isspace() and not line.startswith("#"):
            current = None
            continue
        if current is None:
            continue
        m = re.match(r"^\s+# KMIP (\d+\.\d+)", line)
        if m:
            version = m.group(1)
            continue
        m = re.match(r"^\s{4}([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
        if m and version is not None:
            classes[current].append((m.group(1), version))
    return classes


def in_kmip_1(classes, name):
    """[(member, value, version)] of class @name introduced in KMIP 1.x, values taken from
    the enum itself."""
    cls = getattr(enums, name)
    out = []
    for member, version in classes[name]:
        if version in KMIP_1:
            value = cls[member].value
            assert isinstance(value, int), (name, member, value)
            out.append((member, value, version))
    return out


@pytest.fixture(scope="module")
def sections():
    classes = pykmip_sections()
    assert len(classes.get("Tags", [])) > 300, "enums.py no longer has '# KMIP x.y' sections"
    return classes


@pytest.fixture(scope="module")
def kmipd(build):
    """kmipd's tables: ({tag: (version, name)}, {family tag: {value: (version, name)}})."""
    path = build / "tests" / "tools" / "spec_dump"
    assert path.exists(), f"{path} is missing: run make first"
    done = subprocess.run([str(path)], capture_output=True, timeout=30, check=True)
    tags, families = {}, {}
    for line in done.stdout.decode().splitlines():
        fields = line.split(" ", 4)
        if fields[0] == "tag":
            _, tag, version, name = line.split(" ", 3)
            assert int(tag, 16) not in tags, line
            tags[int(tag, 16)] = (version, name)
        else:
            assert fields[0] == "enum", line
            _, family, value, version, name = fields
            values = families.setdefault(int(family, 16), {})
            assert int(value, 16) not in values, line
            values[int(value, 16)] = (version, name)
    return tags, families


def test_every_pykmip_1x_tag_is_in_kmipd_with_its_number_and_version(sections, kmipd):
    tags, _ = kmipd
    pykmip = in_kmip_1(sections, "Tags")
    assert len(pykmip) >= 292
    wrong = []
    for member, value, version in pykmip:
        if value not in tags:
            wrong.append(f"{member} 0x{value:06X} ({version}) is missing")
        elif tags[value][0] != version:
            wrong.append(f"{member} 0x{value:06X} is {tags[value][0]} in kmipd, "
                         f"{version} in PyKMIP")
    assert not wrong, "\n".join(wrong)


def test_kmipd_has_no_tag_pykmip_does_not_place_in_kmip_1(sections, kmipd):
    tags, _ = kmipd
    pykmip = {value for _, value, _ in in_kmip_1(sections, "Tags")}
    extra = sorted(set(tags) - pykmip)
    assert not extra, [f"0x{t:06X} {tags[t][1]}" for t in extra]


@pytest.mark.parametrize("cls,tag", sorted(VCENTER_FAMILIES.items()))
def test_vcenter_enumerations_match_pykmip(sections, kmipd, cls, tag):
    _, families = kmipd
    family_tag = enums.Tags[tag].value
    assert family_tag in families, f"kmipd has no family for {tag}"
    values = families[family_tag]
    pykmip = in_kmip_1(sections, cls)
    assert pykmip, cls
    wrong = []
    for member, value, version in pykmip:
        expected = PYKMIP_SECTION_ERRATA.get((cls, member), version)
        if value not in values:
            wrong.append(f"{cls}.{member} 0x{value:08X} is missing")
        elif values[value][0] != expected:
            wrong.append(f"{cls}.{member} 0x{value:08X} is {values[value][0]} in kmipd, "
                         f"expected {expected}")
    # ...and kmipd invents no value of these families.
    known = {value for _, value, _ in pykmip}
    wrong += [f"kmipd has 0x{v:08X} {values[v][1]}, PyKMIP has no such {cls} in KMIP 1.x"
              for v in sorted(set(values) - known)]
    assert not wrong, "\n".join(wrong)


def test_every_pykmip_1x_enumeration_value_is_in_kmipd(sections, kmipd):
    """Beyond vCenter's: every enumeration class of enums.py named after a tag."""
    _, families = kmipd
    checked, wrong = 0, []
    for cls, members in sorted(sections.items()):
        if cls == "Tags" or not any(v in KMIP_1 for _, v in members):
            continue
        tag = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls).upper()
        if tag not in enums.Tags.__members__:
            continue
        values = families.get(enums.Tags[tag].value)
        if values is None:
            wrong.append(f"kmipd has no family {cls} ({tag})")
            continue
        for member, value, version in in_kmip_1(sections, cls):
            checked += 1
            expected = PYKMIP_SECTION_ERRATA.get((cls, member), version)
            if values.get(value, (None,))[0] != expected:
                wrong.append(f"{cls}.{member} 0x{value:08X} ({expected}): kmipd has "
                             f"{values.get(value)}")
    assert not wrong, "\n".join(wrong)
    assert checked > 600


def test_spot_checks_of_the_dump(kmipd):
    tags, families = kmipd
    assert tags[0x420094] == ("1.0", "Unique Identifier")
    assert tags[0x420001] == ("1.0", "Activation Date")
    assert families[0x42005C][0x1E] == ("1.1", "Discover Versions")
    assert families[0x42008D][0x01] == ("1.0", "Pre-Active")
    assert families[0x420057][0x08] == ("1.0", "Opaque Object")
    assert families[0x42007E][0x100] == ("1.0", "General Failure")
