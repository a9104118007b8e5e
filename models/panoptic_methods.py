"""The panoptic methods by name: one name each, used by the heads
(``anomask.models.heads.panoptic_images``), the evaluation, the benchmarks, the ROS node's
``panoptic_method`` parameter and ``anomask bag eval --panoptic-method``.

A module of its own, without torch, so the node's parameter table can list the choices
without loading the network code (``anomask.models.heads`` imports torch).

- ``closed-set``: Mask2Former's panoptic of the known classes only (Mask2Former (Cheng et
  al., 2022), the rules of its ``panoptic_inference``: ``anomask.models.heads.panoptic``);
  no unknown instances.
- ``mining``, ``eam``, ``components``: open-set panoptic, which adds unknown instances to
  the closed-set result (the methods are described in ``anomask.models.heads.open_panoptic``).
"""

CLOSED_SET = "closed-set"
OPEN_SET_METHODS = ("mining", "eam", "components")
PANOPTIC_METHODS = (CLOSED_SET, *OPEN_SET_METHODS)
