"""The registry's API: resource models, semver and naming rules shared by every component.

The pydantic models here are the single source of truth; the CRD YAML in ``crds/`` is
generated from them (``python -m gl_api.crdgen``).
"""

GROUP = "registry.greenlang.ai"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "greenlang"
