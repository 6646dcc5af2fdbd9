"""The Azure Functions app: create it, register the blueprints over one lazily built Gateway. Nothing else."""
import azure.functions as func

from sms.bootstrap import GatewayOnFirstUse
from sms.entrypoints import api, callbacks, worker

gateway = GatewayOnFirstUse()  # built from the app settings by the first function that runs

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(api.blueprint(gateway))
app.register_functions(callbacks.blueprint(gateway))
app.register_functions(worker.blueprint(gateway))
