"""Mitogen's linear strategy for the scenarios' plays, found through ANSIBLE_STRATEGY_PLUGINS
(.config/molecule/config.yml) wherever the virtualenv is: one persistent Python interpreter per
instance, reached with `docker exec`, instead of a fresh interpreter and module upload per task.

The CLI's runs use ansible_mitogen's own plugin directory (platform_ctl.runner.mitogen_strategy_dir).
The create and destroy playbooks (molecule/shared/) keep Ansible's linear strategy, as Molecule's
own did: under Mitogen (set in ansible.cfg for every play) the docker driver's create kept retrying
its wait for its asynchronous container task.
"""

from ansible.plugins.strategy.linear import StrategyModule as LinearStrategyModule
from ansible_mitogen.strategy import StrategyMixin


class StrategyModule(StrategyMixin, LinearStrategyModule):
    pass
