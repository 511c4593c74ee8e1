package keywardverification

# Denies a Pod, or a workload's pod template, when keyward does not answer
# verified: true for every image of every container, init container and
# ephemeral container. keyward is Gatekeeper's external-data provider
# "keyward": one response item per image, its value a keyward verify
# result (verify-result.schema.json), or an error.

pod_spec = input.review.object.spec {
	input.review.kind.kind == "Pod"
}

pod_spec = input.review.object.spec.jobTemplate.spec.template.spec {
	input.review.kind.kind == "CronJob"
}

pod_spec = input.review.object.spec.template.spec {
	not input.review.kind.kind == "Pod"
	not input.review.kind.kind == "CronJob"
}

container_lists := ["containers", "initContainers", "ephemeralContainers"]

image_set := {image | image := pod_spec[container_lists[_]][_].image}

images := [image | image_set[image]]

response := external_data({"provider": "keyward", "keys": images})

# Gatekeeper could not call keyward at all (timeout, TLS, keyward down).
violation[{"msg": msg}] {
	count(images) > 0
	response.system_error != ""
	msg := sprintf("keyward: calling the external data provider failed: %s", [response.system_error])
}

# keyward answered an error for an image.
violation[{"msg": msg}] {
	item := response.errors[_]
	msg := sprintf("keyward: image %s: %s", [item[0], item[1]])
}

# keyward answered, and the image is not verified (anything but
# verified: true denies).
violation[{"msg": msg}] {
	item := response.responses[_]
	not verified(item[1])
	msg := sprintf("keyward: image %s is not verified: %s", [item[0], reason(item[1])])
}

verified(result) {
	result.verified == true
}

reason(result) = msg {
	msg := result.error.message
} else = "no verification result"

# An image keyward did not answer for at all is not verified either.
violation[{"msg": msg}] {
	count(images) > 0
	response.system_error == ""
	answered := {key | key := response.responses[_][0]} | {key | key := response.errors[_][0]}
	image := images[_]
	not answered[image]
	msg := sprintf("keyward: no answer for image %s", [image])
}
