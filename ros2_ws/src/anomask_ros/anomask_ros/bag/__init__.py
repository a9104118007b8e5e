"""The rosbag2 tools of ``anomask bag``, apart from the node: ``write`` (frames and ground
truth into a bag), ``play``, ``record``, ``io`` and ``frames`` (reading), ``replay`` (the
real node process fed by a player and recorded), ``eval``/``eval_cli``/``metrics``/``report``
(outputs against the bag's ground truth), ``cli`` (the command)."""
